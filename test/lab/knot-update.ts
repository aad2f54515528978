// DNS UPDATE lab (RFC 2136 + TSIG, RFC 8945): the DNSSEC lab of dnssec.ts (knotd signing the zones,
// unbound validating) with TSIG keys that knotd accepts updates with, each for the zones named. knotd
// signs what an update adds, so the validating resolver answers the new RRsets with AD.
//
//   const lab = await startKnotUpdateLab({
//     zones: [{ name: 'u1.test', records: [] }],
//     keys: [{ name: 'upd', algorithm: 'hmac-sha256', zones: ['u1.test'] }],
//     authoritativeAddress: '127.0.55.1', resolverAddress: '127.0.55.2' });
//   await replaceRRsets([...], { server: lab.authoritative, key: lab.keys.upd });
//   await lab.authoritativeRRset('_mta-sts.u1.test', 'TXT');   ...;   await lab.stop();
//
// Readback goes to knotd itself with `dig` (bind9-dnsutils, no recursion, over TCP): the resolver caches.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TsigAlgorithm, TsigKey } from '../../src/dns/tsig-key.js';
import { type DnssecLab, type DnssecZone, requireCommand, run, startDnssecLab } from './dnssec.js';

export interface LabKeySpec {
  name: string;
  algorithm: TsigAlgorithm;
  /** The zones this key may update. */
  zones: string[];
}

export interface KnotUpdateLab extends DnssecLab {
  /** Each key as the publisher takes it. */
  keys: Record<string, TsigKey>;
  /** Each key written as a BIND key file (`key "name" { algorithm ...; secret "..."; };`), for the CLI. */
  keyFiles: Record<string, string>;
  /** The RRset at knotd (no RRSIG), one presentation rdata per line as dig +short prints it, sorted. */
  authoritativeRRset(name: string, type: string): Promise<string[]>;
  /** The zone by AXFR from knotd (signed with `key`), without DNSSEC records and SOA: "owner ttl class type rdata", sorted. */
  zoneContents(zone: string, key: string): Promise<string[]>;
}

const SECRET_BYTES: Record<TsigAlgorithm, number> = {
  'hmac-sha256': 32,
  'hmac-sha384': 48,
  'hmac-sha512': 64,
};

export async function startKnotUpdateLab(options: {
  zones: DnssecZone[];
  keys: LabKeySpec[];
  authoritativeAddress: string;
  resolverAddress: string;
}): Promise<KnotUpdateLab> {
  const dig = requireCommand('dig', 'bind9-dnsutils');
  const secrets = options.keys.map((k) => ({ ...k, secret: randomBytes(SECRET_BYTES[k.algorithm]) }));
  const lab = await startDnssecLab({
    zones: options.zones,
    authoritativeAddress: options.authoritativeAddress,
    resolverAddress: options.resolverAddress,
    updateKeys: secrets.map((k) => ({ ...k, secret: k.secret.toString('base64') })),
  });
  const keys: Record<string, TsigKey> = {};
  const keyFiles: Record<string, string> = {};
  for (const k of secrets) {
    keys[k.name] = { name: k.name, algorithm: k.algorithm, secret: k.secret };
    keyFiles[k.name] = join(lab.dir, `${k.name}.key`);
    writeFileSync(
      keyFiles[k.name]!,
      `key "${k.name}" {\n\talgorithm ${k.algorithm};\n\tsecret "${k.secret.toString('base64')}";\n};\n`,
      { mode: 0o600 },
    );
  }
  const at = `@${lab.authoritative.host}`;
  const port = String(lab.authoritative.port);
  return {
    ...lab,
    keys,
    keyFiles,
    async authoritativeRRset(name, type) {
      const { stdout } = await run(dig, [at, '-p', port, '+tcp', '+norec', '+short', name, type]);
      // dig prints TLSA data in upper case, split every 56 digits: "3 1 1 ABAB... ABAB"
      const tlsa = (l: string) =>
        l.replace(/^(\d+ \d+ \d+) (.*)$/, (_, f, hex) => `${f} ${hex.replace(/ /g, '').toLowerCase()}`);
      return stdout
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => (type === 'TLSA' ? tlsa(l) : l))
        .sort();
    },
    async zoneContents(zone, keyName) {
      const k = keys[keyName];
      if (k === undefined) throw new Error(`knot update lab: no key "${keyName}"`);
      const y = `${k.algorithm}:${k.name}:${k.secret.toString('base64')}`;
      const args = [at, '-p', port, '-y', y, '+nocmd', '+nostats', '+nocomments', zone, 'AXFR'];
      const { stdout } = await run(dig, args);
      if (/Transfer failed/.test(stdout)) throw new Error(`AXFR of ${zone} failed:\n${stdout}`);
      const skip = new Set([
        'TSIG',
        'RRSIG',
        'NSEC',
        'NSEC3',
        'NSEC3PARAM',
        'DNSKEY',
        'CDS',
        'CDNSKEY',
        'SOA',
      ]);
      const lines = stdout
        .split('\n')
        .filter((l) => l !== '' && !l.startsWith(';'))
        .map((l) => l.split(/\s+/))
        .filter((f) => !skip.has(f[3] ?? ''))
        .map((f) => f.join(' '));
      return [...new Set(lines)].sort();
    },
  };
}
