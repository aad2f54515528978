// Lab ACME CA: Pebble (Debian package `pebble`, Let's Encrypt's RFC 8555 test server) on loopback.
// Its HTTPS listener uses a certificate made here for IP 127.0.0.1 (the package ships no test
// certificates); clients trust it through `caFile`. HTTP-01 validation connects to the address the
// lab DNS server gives for the identifier, on `httpPort`: point the DNS at the loopback address
// where the server under test listens, and give its plain listener that port.
//
//   const pebble = await startPebble({ dns: { host: lab.host, port: lab.port }, httpPort });
//   ... acme-client with directoryUrl pebble.directoryUrl, trusting pebble.caFile ...
//   const root = await pebble.issuingRoot();   // the (random, per run) root of issued certificates
//   await pebble.stop();
//
// PEBBLE_VA_NOSLEEP=1 (no random wait before validating), PEBBLE_WFE_NONCEREJECT=0 (no random
// badNonce errors): the tests want determinism, not Pebble's client-hardening chaos.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openssl } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';

export const PEBBLE_BIN = '/usr/bin/pebble';

export interface PebbleLab {
  directoryUrl: string;
  /** PEM file of the certificate of Pebble's own HTTPS listeners (trust it to talk to Pebble). */
  caFile: string;
  /** The root CA certificate of the certificates Pebble issues (PEM). */
  issuingRoot(): Promise<string>;
  /** Pebble's output so far (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  /** The lab DNS server Pebble resolves identifiers with. */
  dns: { host: string; port: number };
  /** Port of HTTP-01 validation requests. */
  httpPort: number;
}

export async function startPebble(options: PebbleOptions): Promise<PebbleLab> {
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-pebble-'));
  const cert = join(dir, 'pebble-cert.pem');
  const key = join(dir, 'pebble-key.pem');
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-subj',
    '/CN=pebble lab',
    '-days',
    '30',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  const [acmePort, managementPort, tlsPort] = [await freePort(), await freePort(), await freePort()];
  const config = join(dir, 'pebble-config.json');
  writeFileSync(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: cert,
        privateKey: key,
        httpPort: options.httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  let output = '';
  const child: ChildProcess = spawn(
    PEBBLE_BIN,
    ['-config', config, '-dnsserver', `${options.dns.host}:${options.dns.port}`, '-strict=false'],
    {
      env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(acmePort, () => output);
  } catch (err) {
    await stop();
    throw err;
  }
  const caPem = readFileSync(cert, 'utf8');
  return {
    directoryUrl: `https://127.0.0.1:${acmePort}/dir`,
    caFile: cert,
    issuingRoot: () => httpsText(`https://127.0.0.1:${managementPort}/roots/0`, caPem),
    output: () => output,
    stop,
  };
}

function httpsText(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () =>
          res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: HTTP ${res.statusCode}`)),
        );
      })
      .on('error', reject);
  });
}

async function waitForPort(port: number, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`pebble did not start listening on 127.0.0.1:${port}:\n${output()}`);
}
