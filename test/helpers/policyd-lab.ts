// A lab of recipient domains for the policy daemon's tests: the lab DNS server (secure, insecure, bogus
// and servfail zones, TLSA records) and the lab HTTPS policy host with a test PKI, on loopback only.
// Each domain is one scenario of the decision table in docs/policyd.md.
//
// The lab DNS server shares each zone's `records` array with the caller, so `setTxtId` can publish a
// new `_mta-sts` id while it runs (the tests check that the lab really serves it).
import { createHash } from 'node:crypto';
import net from 'node:net';
import { DnsClient } from '../../src/dns/client.js';
import { type LabDnsServer, type LabRecord, type LabZone, startDnsServer } from '../lab/dns-server.js';
import { labCert, type PolicyHost, type SiteBehaviour, startPolicyHost } from '../lab/https-server.js';
import { standardChain, TestPki } from './pki.js';

export const LAB_IP = '127.0.0.1';

export function policyText(mode: string, mx: string[], maxAge = 604800): string {
  return `version: STSv1\nmode: ${mode}\n${mx.map((m) => `mx: ${m}\n`).join('')}max_age: ${maxAge}\n`;
}

/** TLSA RDATA for dns-packet: usage/selector/matching type and 32 bytes of "digest". */
function tlsa(owner: string, usage: number, seed: string): LabRecord {
  return {
    name: owner,
    type: 'TLSA',
    data: { usage, selector: 1, matchingType: 1, certificate: createHash('sha256').update(seed).digest() },
  };
}

interface Scenario {
  /** Zone flags. */
  secure?: boolean;
  bogus?: boolean;
  servfail?: boolean;
  /** MX hosts (default mx.<domain>); each gets A 127.0.0.1. */
  mx?: string[];
  /** `_mta-sts` TXT id (default none: no MTA-STS record). */
  id?: string;
  /** The policy served at mta-sts.<domain> (default none). */
  site?: SiteBehaviour;
  /** MX hosts with TLSA records, and the usage of their record (3 = DANE-EE, 1 = PKIX-EE, unusable). */
  tlsa?: Record<string, number>;
  /** Sub-zones holding the TLSA RRset of these hosts, with these flags (bogus/servfail TLSA). */
  tlsaZone?: Record<string, Pick<LabZone, 'bogus' | 'servfail'>>;
  /** MX hosts that are aliases: CNAME to the given name (in the same zone, which gets A 127.0.0.1). */
  cname?: Record<string, string>;
}

const enforce = (domain: string): SiteBehaviour => ({
  kind: 'serve',
  body: policyText('enforce', [`mx.${domain}`, `*.${domain}`]),
});

/** The scenarios, by domain. */
export const SCENARIOS: Record<string, Scenario> = {
  'enforce.test': { id: '1', site: enforce('enforce.test') },
  'testing.test': { id: '1', site: { kind: 'serve', body: policyText('testing', ['mx.testing.test']) } },
  'none.test': { id: '1', site: { kind: 'serve', body: 'version: STSv1\nmode: none\nmax_age: 86400\n' } },
  'nopolicy.test': {},
  'invalid.test': {
    id: '1',
    site: { kind: 'serve', body: 'version: STSv1\nmode: enforce\nmax_age: 86400\n' },
  },
  'ambiguous.test': {
    id: '1',
    site: {
      kind: 'serve',
      body: 'version: STSv1\nmode: enforce\nmode: testing\nmx: mx.ambiguous.test\nmax_age: 86400\n',
    },
  },
  'broken.test': { id: '1', site: { kind: 'serve', status: 500, body: 'oops\n' } },
  'changing.test': { id: '1', site: enforce('changing.test') },
  'flaky.test': { id: '1', site: enforce('flaky.test') },
  // DANE
  'dane.test': { secure: true, id: '1', site: enforce('dane.test'), tlsa: { 'mx.dane.test': 3 } },
  'insecuretlsa.test': { id: '1', site: enforce('insecuretlsa.test'), tlsa: { 'mx.insecuretlsa.test': 3 } },
  'signed.test': { secure: true, id: '1', site: enforce('signed.test') },
  'bogus.test': { secure: true, bogus: true, id: '1', site: enforce('bogus.test') },
  'bogustlsa.test': {
    secure: true,
    id: '1',
    site: enforce('bogustlsa.test'),
    tlsa: { 'mx.bogustlsa.test': 3 },
    tlsaZone: { 'mx.bogustlsa.test': { bogus: true } },
  },
  'servfailtlsa.test': {
    secure: true,
    id: '1',
    site: enforce('servfailtlsa.test'),
    tlsaZone: { 'mx.servfailtlsa.test': { servfail: true } },
  },
  'mixed.test': {
    secure: true,
    id: '1',
    site: enforce('mixed.test'),
    mx: ['mx1.mixed.test', 'mx2.mixed.test'],
    tlsa: { 'mx1.mixed.test': 3 },
  },
  'mixednopolicy.test': {
    secure: true,
    mx: ['mx1.mixednopolicy.test', 'mx2.mixednopolicy.test'],
    tlsa: { 'mx1.mixednopolicy.test': 3 },
  },
  'unusable.test': { secure: true, id: '1', site: enforce('unusable.test'), tlsa: { 'mx.unusable.test': 1 } },
  'unusablenopolicy.test': { secure: true, tlsa: { 'mx.unusablenopolicy.test': 1 } },
  // An enforced policy that covers none of the MX hosts: Postfix defers (policyd query says so).
  'nomatch.test': {
    id: '1',
    site: { kind: 'serve', body: policyText('enforce', ['other.nomatch.test']) },
  },
  // RFC 7672 §2.2.2: the MX host is a secure alias; its TLSA RRset sits at the CNAME target only.
  'cname.test': {
    secure: true,
    id: '1',
    site: enforce('cname.test'),
    cname: { 'mx.cname.test': 'real.cname.test' },
    tlsa: { 'real.cname.test': 3 },
  },
};

export interface PolicydLab {
  dns: LabDnsServer;
  https: PolicyHost;
  /** The test root CA, PEM file (for --ca-file) and text. */
  caFile: string;
  ca: string[];
  /** A client of the lab DNS server. */
  resolver: DnsClient;
  /** --resolver, --ca-file, --allow-private, --https-port for the command line. */
  args: string[];
  /** Publish another `_mta-sts` id for a domain (and check the lab serves it). */
  setTxtId(domain: string, id: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startPolicydLab(): Promise<PolicydLab> {
  const pki = TestPki.create('mxguard-policyd-');
  const names = Object.keys(SCENARIOS).map((d) => `mta-sts.${d}`);
  const chain = standardChain(pki, { host: names[0]!, sans: names });
  const zones: LabZone[] = [];
  for (const [domain, s] of Object.entries(SCENARIOS)) {
    const mx = s.mx ?? [`mx.${domain}`];
    const records: LabRecord[] = mx.map((host, i) => ({
      name: domain,
      type: 'MX',
      data: { preference: 10 * (i + 1), exchange: host },
    }));
    for (const host of mx) {
      const target = s.cname?.[host];
      if (target === undefined) records.push({ name: host, type: 'A', data: LAB_IP });
      else
        records.push({ name: host, type: 'CNAME', data: target }, { name: target, type: 'A', data: LAB_IP });
    }
    if (s.id !== undefined)
      records.push({ name: `_mta-sts.${domain}`, type: 'TXT', data: `v=STSv1; id=${s.id}` });
    if (s.site !== undefined) records.push({ name: `mta-sts.${domain}`, type: 'A', data: LAB_IP });
    const tlsaZones: LabZone[] = [];
    for (const [host, usage] of Object.entries(s.tlsa ?? {})) {
      const record = tlsa(`_25._tcp.${host}`, usage, host);
      const sub = s.tlsaZone?.[host];
      if (sub === undefined) records.push(record);
      else tlsaZones.push({ origin: `_25._tcp.${host}`, secure: true, ...sub, records: [record] });
    }
    for (const [host, flags] of Object.entries(s.tlsaZone ?? {})) {
      if (s.tlsa?.[host] === undefined)
        tlsaZones.push({ origin: `_25._tcp.${host}`, secure: true, ...flags, records: [] });
    }
    zones.push(
      { origin: domain, secure: s.secure ?? false, bogus: s.bogus, servfail: s.servfail, records },
      ...tlsaZones,
    );
  }
  const dns = await startDnsServer(zones);
  const sites: Record<string, SiteBehaviour> = {};
  for (const [domain, s] of Object.entries(SCENARIOS)) if (s.site) sites[`mta-sts.${domain}`] = s.site;
  const https = await startPolicyHost({
    defaultCert: labCert(chain.leaf.key, [chain.leaf, chain.intermediate]),
    sites,
  });
  const resolver = new DnsClient({
    servers: [{ host: dns.host, port: dns.port }],
    timeoutMs: 1000,
    tries: 1,
  });
  return {
    dns,
    https,
    caFile: chain.root.certPath,
    ca: [chain.root.pem],
    resolver,
    args: [
      '--resolver',
      `${dns.host}:${dns.port}`,
      '--ca-file',
      chain.root.certPath,
      '--allow-private',
      '--https-port',
      String(https.port),
    ],
    async setTxtId(domain, id) {
      const zone = zones.find((z) => z.origin === domain)!;
      const owner = `_mta-sts.${domain}`;
      const index = zone.records.findIndex((r) => r.name === owner && r.type === 'TXT');
      zone.records[index] = { name: owner, type: 'TXT', data: `v=STSv1; id=${id}` };
      const served = await resolver.txt(owner);
      if (!served.values.includes(`v=STSv1; id=${id}`)) {
        throw new Error(
          `the lab DNS server does not serve the new id for ${owner}: ${served.values.join(' | ')}`,
        );
      }
    },
    async stop() {
      await Promise.all([dns.stop(), https.stop()]);
      pki.remove();
    },
  };
}

/** A socketmap client like Postfix's: one connection, one request at a time (or pipelined). */
export class SocketmapClient {
  private buffered = Buffer.alloc(0);
  private readonly waiting: Array<(reply: string) => void> = [];
  private closedResolve!: () => void;
  /** Resolves when the server closes the connection. */
  readonly closed = new Promise<void>((resolve) => {
    this.closedResolve = resolve;
  });

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      for (;;) {
        const colon = this.buffered.indexOf(0x3a);
        if (colon < 0) return;
        const length = Number(this.buffered.subarray(0, colon).toString());
        if (this.buffered.length < colon + length + 2) return;
        const reply = this.buffered.subarray(colon + 1, colon + 1 + length).toString();
        this.buffered = this.buffered.subarray(colon + length + 2);
        this.waiting.shift()?.(reply);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => this.closedResolve());
  }

  static connect(target: { port: number; host?: string } | { path: string }): Promise<SocketmapClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(target as net.NetConnectOpts);
      socket.once('connect', () => resolve(new SocketmapClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Send raw bytes; the next reply resolves the promise. */
  sendRaw(bytes: Buffer | string): Promise<string> {
    const reply = new Promise<string>((resolve) => this.waiting.push(resolve));
    this.socket.write(bytes);
    return reply;
  }

  query(key: string, map = 'postfix'): Promise<string> {
    const payload = Buffer.from(`${map} ${key}`);
    return this.sendRaw(Buffer.concat([Buffer.from(`${payload.length}:`), payload, Buffer.from(',')]));
  }

  close(): void {
    this.socket.destroy();
  }
}
