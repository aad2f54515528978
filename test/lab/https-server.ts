// Lab HTTPS host for MTA-STS policies (RFC 8461 §3.3) and any other HTTPS the tests need: one TLS
// listener on loopback that picks each site's certificate and behaviour by SNI, well behaved or
// broken in the ways a policy fetcher must survive. Loopback only (LAB-NOTES: tests never talk to
// anything but 127.0.0.0/8 and ::1).
//
//   const lab = await startPolicyHost({
//     defaultCert: labCert(leaf.key, [leaf, intermediate]),
//     sites: {
//       'mta-sts.example.test': { kind: 'serve', body: 'version: STSv1\n...' },
//       'mta-sts.moved.test': { kind: 'redirect', location: 'https://elsewhere.test/' },
//       'mta-sts.expired.test': { kind: 'serve', body: POLICY, cert: labCert(old.key, [old, intermediate]) },
//     },
//   });
//   await fetchPolicy('example.test', { resolveHost: async () => [lab.host], port: lab.port, ... });
//   lab.requests; // [{ host: 'mta-sts.example.test', path: '/.well-known/mta-sts.txt', ... }]
//   await lab.stop();
//
// Site behaviours (`kind`), every one combinable with `cert` (the site's chain; default defaultCert):
//   serve             status (default 200), body, contentType (default "text/plain"; null = no header),
//                     gzip (compress the body and say Content-Encoding: gzip, whatever was asked),
//                     extra headers
//                     (a 404 or any other status: { kind: 'serve', status: 404, body: 'not found' })
//   redirect          301 (or `status`) with Location
//   huge              `bytes` (default 1 MiB) of policy-like text, streamed with backpressure; with
//                     Content-Length when `declareLength`, chunked otherwise
//   slow              200 with Content-Length, then one byte of `body` every `intervalMs` (default 50)
//   stall-handshake   the TLS handshake never completes (SNICallback never answers)
//   handshake-failure the server aborts the TLS handshake with an alert
//   garbage           after the handshake, `data` (default a non-HTTP line) and close: not HTTP
// A site is chosen by SNI, else by the Host header; an unknown site gets 404 "no such site".
// A client without SNI gets defaultCert's leaf alone (no chain), see startPolicyHost.
// The site table may be changed while the server runs (setSite), e.g. to publish a new policy.

import { readFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { gzipSync } from 'node:zlib';

/** A certificate chain (leaf first) and its private key, PEM. */
export interface LabCert {
  key: string;
  cert: string;
}

export type SiteResponse =
  | {
      kind: 'serve';
      body: string | Buffer;
      status?: number;
      /** Default "text/plain"; null sends no Content-Type. */
      contentType?: string | null;
      gzip?: boolean;
      headers?: Record<string, string>;
    }
  | { kind: 'redirect'; location: string; status?: number }
  | { kind: 'huge'; bytes?: number; declareLength?: boolean }
  | { kind: 'slow'; body?: string; intervalMs?: number }
  | { kind: 'stall-handshake' }
  | { kind: 'handshake-failure' }
  | { kind: 'garbage'; data?: string | Buffer };

export type SiteBehaviour = SiteResponse & {
  /** The chain this site presents (default: the server's defaultCert). */
  cert?: LabCert;
};

export interface LabRequest {
  /** The Host header without port. */
  host: string;
  path: string;
  userAgent: string | undefined;
  method: string;
  /** SNI of the connection (undefined without SNI). */
  servername: string | undefined;
  headers: IncomingHttpHeaders;
}

export interface PolicyHostOptions {
  /** A loopback address (default 127.0.0.1). */
  host?: string;
  /** Default 0: an ephemeral port. */
  port?: number;
  /** Site behaviour by host name (lower case). */
  sites: Record<string, SiteBehaviour>;
  /**
   * For unknown names and sites without their own `cert`. A client that sends no SNI (e.g. one that
   * connects to an IP address) gets only its first certificate, without the chain (see the server).
   */
  defaultCert: LabCert;
}

export interface PolicyHost {
  host: string;
  port: number;
  /** Every HTTP request received, in order. */
  requests: LabRequest[];
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Add or replace a site. */
  setSite(name: string, behaviour: SiteBehaviour): void;
  stop(): Promise<void>;
}

/** A LabCert from a key file and a chain (leaf first), e.g. test/helpers/pki.ts objects. */
export function labCert(key: { path: string }, chain: Array<{ pem: string }>): LabCert {
  return { key: readFileSync(key.path, 'utf8'), cert: chain.map((c) => c.pem).join('') };
}

const DEFAULT_GARBAGE = 'SSH-2.0-OpenSSH_9.2 this is not HTTP\r\n';
const HUGE_LINE = 'mx: mail.example.test\n';

export async function startPolicyHost(options: PolicyHostOptions): Promise<PolicyHost> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopback(host)) throw new Error(`lab HTTPS server: ${host} is not a loopback address`);
  const sites = new Map(Object.entries(options.sites).map(([name, site]) => [name.toLowerCase(), site]));
  const siteFor = (name: string | undefined) => (name ? sites.get(name.toLowerCase()) : undefined);
  const requests: LabRequest[] = [];
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const contexts = new WeakMap<LabCert, tls.SecureContext>();
  const contextFor = (cert: LabCert) => {
    let context = contexts.get(cert);
    if (!context) {
      context = tls.createSecureContext(cert);
      contexts.set(cert, context);
    }
    return context;
  };
  let connections = 0;

  const httpServer = http.createServer((req, res) => {
    const servername = (req.socket as tls.TLSSocket).servername || undefined;
    const hostHeader = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
    requests.push({
      host: hostHeader,
      path: req.url ?? '',
      userAgent: req.headers['user-agent'],
      method: req.method ?? '',
      servername,
      headers: req.headers,
    });
    respond(siteFor(servername || hostHeader), req, res, timers);
  });

  // Node's SNI switch copies the chosen context's certificate and chain into the connection but keeps
  // the initial context's chain when the chosen one has none; so the initial context gets the leaf
  // alone and SNICallback always hands out a full context (a site's, else defaultCert's).
  const server = tls.createServer({
    key: options.defaultCert.key,
    cert: firstCertificate(options.defaultCert.cert),
    ALPNProtocols: ['http/1.1'],
    SNICallback: (servername, callback) => {
      const site = siteFor(servername);
      if (site?.kind === 'stall-handshake') return; // never answer: the handshake stalls
      if (site?.kind === 'handshake-failure') {
        callback(new Error(`lab: refusing the handshake for ${servername}`));
        return;
      }
      callback(null, contextFor(site?.cert ?? options.defaultCert));
    },
  });
  server.on('connection', (socket: net.Socket) => {
    connections++;
    track(sockets, socket);
  });
  server.on('tlsClientError', () => {}); // failed handshakes are what some tests are about
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    track(sockets, socket);
    const site = siteFor(socket.servername || undefined);
    if (site?.kind === 'garbage') {
      socket.end(site.data ?? DEFAULT_GARBAGE);
      return;
    }
    httpServer.emit('connection', socket);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    host,
    port,
    requests,
    get connections() {
      return connections;
    },
    setSite: (name, behaviour) => {
      sites.set(name.toLowerCase(), behaviour);
    },
    stop: async () => {
      for (const timer of timers) clearInterval(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function respond(
  site: SiteBehaviour | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  timers: Set<NodeJS.Timeout>,
): void {
  switch (site?.kind) {
    case undefined:
      send(res, 404, 'no such site\n', { 'Content-Type': 'text/plain' });
      return;
    case 'serve': {
      const headers: Record<string, string> = { ...site.headers };
      const contentType = site.contentType === undefined ? 'text/plain' : site.contentType;
      if (contentType !== null) headers['Content-Type'] = contentType;
      let body = Buffer.from(site.body);
      if (site.gzip) {
        body = gzipSync(body);
        headers['Content-Encoding'] = 'gzip';
      }
      send(res, site.status ?? 200, body, headers);
      return;
    }
    case 'redirect':
      send(res, site.status ?? 301, 'moved\n', { Location: site.location, 'Content-Type': 'text/plain' });
      return;
    case 'huge':
      streamHuge(res, site.bytes ?? 1024 * 1024, site.declareLength ?? false);
      return;
    case 'slow':
      drip(req, res, Buffer.from(site.body ?? 'version: STSv1\nmode: none\nmax_age: 86400\n'), site, timers);
      return;
    default:
      // stall-handshake, handshake-failure and garbage never reach HTTP.
      send(res, 500, 'unexpected\n', {});
  }
}

function send(
  res: ServerResponse,
  status: number,
  body: string | Buffer,
  headers: Record<string, string>,
): void {
  res.writeHead(status, { ...headers, 'Content-Length': String(Buffer.byteLength(body)) });
  res.end(body);
}

/** Write `total` bytes of repeated text, waiting for 'drain', until done or the client is gone. */
function streamHuge(res: ServerResponse, total: number, declareLength: boolean): void {
  res.writeHead(200, {
    'Content-Type': 'text/plain',
    ...(declareLength ? { 'Content-Length': String(total) } : {}),
  });
  const chunk = Buffer.from(HUGE_LINE.repeat(Math.ceil(16384 / HUGE_LINE.length)));
  let left = total;
  const pump = () => {
    while (left > 0 && !res.destroyed) {
      const piece = chunk.subarray(0, Math.min(left, chunk.length));
      left -= piece.length;
      if (!res.write(piece)) {
        res.once('drain', pump);
        return;
      }
    }
    if (left === 0) res.end();
  };
  pump();
}

/** One byte per interval; stops when the body is done or the client went away. */
function drip(
  req: IncomingMessage,
  res: ServerResponse,
  body: Buffer,
  site: { intervalMs?: number },
  timers: Set<NodeJS.Timeout>,
): void {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': String(body.length) });
  let sent = 0;
  const timer = setInterval(() => {
    if (res.destroyed || sent >= body.length) {
      clearInterval(timer);
      timers.delete(timer);
      if (!res.destroyed) res.end();
      return;
    }
    res.write(body.subarray(sent, sent + 1));
    sent++;
  }, site.intervalMs ?? 50);
  timers.add(timer);
  req.socket.once('close', () => {
    clearInterval(timer);
    timers.delete(timer);
  });
}

function firstCertificate(pem: string): string {
  const match = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(pem);
  if (!match) throw new Error('lab HTTPS server: defaultCert.cert holds no PEM certificate');
  return `${match[0]}\n`;
}

function track(sockets: Set<net.Socket>, socket: net.Socket): void {
  sockets.add(socket);
  socket.on('error', () => {});
  socket.once('close', () => sockets.delete(socket));
}

function isLoopback(host: string): boolean {
  return (net.isIPv4(host) && host.startsWith('127.')) || host === '::1';
}
