// `mxguard policyd` asked by real Postfix (`postmap -q KEY socketmap:inet:...`, Debian package `postfix`), and the
// same lab asked of postfix-mta-sts-resolver (Debian package `postfix-mta-sts-resolver`), side by side.
//
// The lab (LAB-NOTES: loopback only): the lab DNS server (a resolver with per-zone DNSSEC flags) on
// 127.0.61.53 port 53 and the lab HTTPS policy host on 127.0.61.1 port 443 — the peer can only read
// /etc/resolv.conf (which has no port) and fetch from port 443, so it runs in a private mount namespace with the
// lab's resolv.conf (test/lab/peer-resolver.ts). Every MX and mta-sts name points at 127.0.61.1. Our daemon is the
// built binary (`node dist/cli/main.js policyd`), given the same lab by its options. Domains (RFC 8461):
//   enforce.test    enforce, an exact and a wildcard mx           both: OK secure match=...
//   testing.test    testing                                        both: NOTFOUND (RFC 8461 §5: no enforcement)
//   none.test       none                                           both: NOTFOUND
//   nopolicy.test   MX, no _mta-sts record                         both: NOTFOUND
//   garbage.test    TXT, but the policy file is an HTML page       both: NOTFOUND
//   invalid.test    TXT, a policy with the mx lines "*" and "a b"  ours: NOTFOUND; peer: a broken OK answer
//   dane.test       DNSSEC-secure zone, MX with TLSA 3 1 1, and    ours: OK dane-only (RFC 8461 §2: DANE first);
//                   an enforce policy                              peer: OK secure match=... (no DANE at all)
//   .enforce.test, [enforce.test]:25   parent-domain key, next-hop key with port
//   changed.test    the TXT id and the policy change mid-test      both: the new policy once the id is re-checked
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BIN } from '../helpers/cli.js';
import { type Endpoint, socketmapQuery } from '../helpers/netstring-client.js';
import { standardChain, TestPki } from '../helpers/pki.js';
import { type LabDnsServer, type LabZone, startDnsServer } from '../lab/dns-server.js';
import { Daemon, requireCommand, requireRoot } from '../lab/dnssec.js';
import { labCert, type PolicyHost, startPolicyHost } from '../lab/https-server.js';
import { type LabPeerResolver, startPeerResolver, writeLabResolvConf } from '../lab/peer-resolver.js';
import { freePort } from '../lab/redis.js';

const DNS = { host: '127.0.61.53', port: 53 };
const WEB = '127.0.61.1';
/** Both daemons re-check a cached policy's TXT id after this many seconds. */
const ID_RECHECK_SECONDS = 1;

const DOMAIN_NAMES = [
  'enforce.test',
  'testing.test',
  'none.test',
  'nopolicy.test',
  'garbage.test',
  'invalid.test',
  'dane.test',
  'mixed.test',
  'unusable.test',
  'bogustlsa.test',
  'bogus.test',
  'changed.test',
];

const tlsa = (host: string, usage: number, selector: number, matchingType: number, hex: string) => ({
  name: `_25._tcp.${host}`,
  type: 'TLSA' as const,
  data: { usage, selector, matchingType, certificate: Buffer.from(hex, 'hex') },
});

const policy = (mode: string, mx: string[]) =>
  `version: STSv1\nmode: ${mode}\n${mx.map((m) => `mx: ${m}\n`).join('')}max_age: 86400\n`;

/** One lab domain: its zone (MX, _mta-sts TXT, mta-sts A) and what its policy host serves. */
interface LabDomain {
  name: string;
  txtId?: string;
  body?: string;
  /** MX host names (default mx.<name>); each gets an A record. */
  mx?: string[];
  secure?: boolean;
  bogus?: boolean;
  /** More records in the zone (TLSA). */
  extra?: LabZone['records'];
  /** Zones of their own below this one (a bogus TLSA zone). */
  subzones?: LabZone[];
}

function zonesOf(d: LabDomain): LabZone[] {
  const mx = d.mx ?? [`mx.${d.name}`];
  const records: LabZone['records'] = [
    ...mx.map((host, i) => ({
      name: d.name,
      type: 'MX' as const,
      data: { preference: 10 * (i + 1), exchange: host },
    })),
    ...mx.map((host) => ({ name: host, type: 'A' as const, data: WEB })),
    { name: `mta-sts.${d.name}`, type: 'A', data: WEB },
    ...(d.extra ?? []),
  ];
  if (d.txtId !== undefined) {
    records.push({ name: `_mta-sts.${d.name}`, type: 'TXT', data: [`v=STSv1; id=${d.txtId}`] });
  }
  return [
    { origin: d.name, secure: d.secure ?? false, bogus: d.bogus ?? false, records },
    ...(d.subzones ?? []),
  ];
}

/**
 * One row of the side-by-side table: the key Postfix asks, the answer each daemon must give (a socketmap
 * reply, match lists compared as sets: the peer writes them in Python set order), and why they differ.
 */
interface Row {
  key: string;
  ours: string | RegExp;
  peer: string | RegExp;
  why?: string;
}

type Answers = Map<string, { ours?: string; peer?: string }>;

describe('policyd interop: Postfix postmap against mxguard policyd and postfix-mta-sts-resolver', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'mxguard-policyd-interop-'));
  const pki = TestPki.create('mxguard-policyd-interop-pki-');
  const cleanups: Array<() => Promise<void>> = [];
  const answers: Answers = new Map();
  let dnsServer: LabDnsServer | undefined;
  let web: PolicyHost;
  let peer: LabPeerResolver;
  let ours: Promise<Endpoint>;
  /** Our daemon's log so far (its failures: JSON lines on stderr). */
  let oursLog = () => '';
  let postfixConfig: string;
  let tlsaHash: string;

  const domains = (): LabDomain[] => [
    {
      name: 'enforce.test',
      txtId: 'e1',
      body: policy('enforce', ['mx.enforce.test', '*.backup.enforce.test']),
    },
    { name: 'testing.test', txtId: 't1', body: policy('testing', ['mx.testing.test']) },
    { name: 'none.test', txtId: 'n1', body: 'version: STSv1\nmode: none\nmax_age: 86400\n' },
    { name: 'nopolicy.test' },
    { name: 'garbage.test', txtId: 'g1', body: '<html><body>It works!</body></html>\n' },
    { name: 'invalid.test', txtId: 'i1', body: policy('enforce', ['*', 'a b']) },
    {
      name: 'dane.test',
      txtId: 'd1',
      body: policy('enforce', ['mx.dane.test']),
      secure: true,
      extra: [tlsa('mx.dane.test', 3, 1, 1, tlsaHash)],
    },
    {
      // Secure zone, two MX hosts: the first with a usable TLSA record, the second with none (secure denial).
      name: 'mixed.test',
      txtId: 'm1',
      body: policy('enforce', ['mx1.mixed.test', 'mx2.mixed.test']),
      mx: ['mx1.mixed.test', 'mx2.mixed.test'],
      secure: true,
      extra: [tlsa('mx1.mixed.test', 3, 1, 1, tlsaHash)],
    },
    {
      // Secure zone, TLSA PKIX-EE(1) only: not usable for SMTP (RFC 7672 §3.1.3).
      name: 'unusable.test',
      txtId: 'u1',
      body: policy('enforce', ['mx.unusable.test']),
      secure: true,
      extra: [tlsa('mx.unusable.test', 1, 1, 1, tlsaHash)],
    },
    {
      // Secure MX and address records; the TLSA RRset lives in a zone of its own that fails validation.
      name: 'bogustlsa.test',
      txtId: 'b1',
      body: policy('enforce', ['mx.bogustlsa.test']),
      secure: true,
      subzones: [
        {
          origin: '_tcp.mx.bogustlsa.test',
          secure: true,
          bogus: true,
          records: [tlsa('mx.bogustlsa.test', 3, 1, 1, tlsaHash)],
        },
      ],
    },
    {
      // The whole zone fails DNSSEC validation: SERVFAIL for the MX and the TXT alike.
      name: 'bogus.test',
      txtId: 'x1',
      body: policy('enforce', ['mx.bogus.test']),
      secure: true,
      bogus: true,
    },
    { name: 'changed.test', txtId: 'c1', body: policy('enforce', ['old.changed.test']) },
  ];

  let zones: LabZone[] = [];

  before(async () => {
    requireRoot('the policyd interop lab (port 53 and 443 on 127.0.61.x, a private mount namespace)');
    requireCommand('postmap', 'postfix');
    const chain = standardChain(pki, {
      host: 'mta-sts.enforce.test',
      sans: DOMAIN_NAMES.map((d) => `mta-sts.${d}`),
    });
    const caFile = pki.writeChain('ca.pem', [chain.root]);
    tlsaHash = createHash('sha256')
      .update(chain.leaf.x509.publicKey.export({ type: 'spki', format: 'der' }))
      .digest('hex');
    const list = domains();
    assert.deepEqual(
      list.map((d) => d.name),
      DOMAIN_NAMES,
    );
    zones = list.flatMap(zonesOf);
    dnsServer = await startDnsServer(zones, DNS);
    cleanups.push(async () => dnsServer?.stop());
    const sites = Object.fromEntries(
      list
        .filter((d) => d.body !== undefined)
        .map((d) => [`mta-sts.${d.name}`, { kind: 'serve' as const, body: d.body! }]),
    );
    web = await startPolicyHost({
      host: WEB,
      port: 443,
      defaultCert: labCert(chain.leaf.key, [chain.leaf, chain.intermediate]),
      sites,
    });
    cleanups.push(() => web.stop());

    // postmap reads main.cf from its config directory; a minimal one keeps the machine's Postfix config out.
    postfixConfig = join(tmp, 'postfix');
    mkdirSync(postfixConfig);
    writeFileSync(join(postfixConfig, 'main.cf'), 'compatibility_level = 3.6\n');

    peer = await startPeerResolver({
      resolvConfPath: writeLabResolvConf(tmp, DNS.host),
      caFile,
      cacheGrace: ID_RECHECK_SECONDS,
    });
    cleanups.push(() => peer.stop());

    ours = startOurs(caFile);
    // A failed start is reported by every test of ours; keep it from being an unhandled rejection here.
    ours.catch(() => {});
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    pki.remove();
    rmSync(tmp, { recursive: true, force: true });
  });

  async function startOurs(caFile: string): Promise<Endpoint> {
    const help = await execText(process.execPath, [BIN, 'policyd', '--help']);
    if (!/--listen/.test(help.stdout)) {
      throw new Error(
        `${BIN} has no "policyd" command (build with npx tsc -p tsconfig.json): ${help.stderr.trim()}`,
      );
    }
    const port = await freePort();
    const dataDir = join(tmp, 'ours-data');
    mkdirSync(dataDir);
    const daemon = new Daemon('mxguard policyd', process.execPath, [
      BIN,
      'policyd',
      '--listen',
      `127.0.0.1:${port}`,
      '--resolver',
      `${DNS.host}:${DNS.port}`,
      '--ca-file',
      caFile,
      '--allow-private',
      '--https-port',
      '443',
      '--data-dir',
      dataDir,
      '--id-check-interval',
      String(ID_RECHECK_SECONDS),
    ]);
    cleanups.push(() => daemon.stop());
    oursLog = () => daemon.log;
    const endpoint = { host: '127.0.0.1', port };
    await daemon.waitFor(async () => {
      try {
        await socketmapQuery(endpoint, 'postfix', '.ready.test');
        return true;
      } catch {
        return false;
      }
    });
    return endpoint;
  }

  /** Ask through Postfix: postmap prints the reply after "OK " and exits 0, or exits 1 for NOTFOUND. */
  async function postmap(endpoint: Endpoint, key: string): Promise<string> {
    if ('path' in endpoint) throw new Error('TCP endpoints only');
    const table = `socketmap:inet:${endpoint.host}:${endpoint.port}:postfix`;
    const r = await execText('postmap', ['-c', postfixConfig, '-q', key, table]);
    if (r.code === 0) return `OK ${r.stdout.replace(/\n$/, '')}`;
    if (r.code === 1 && r.stdout === '' && r.stderr === '') return 'NOTFOUND ';
    throw new Error(`postmap -q ${key} ${table}: exit ${r.code}: ${r.stderr}${r.stdout}`);
  }

  /** What Postfix sees, checked against the raw socketmap reply (which keeps NOTFOUND's trailing space). */
  async function ask(who: 'ours' | 'peer', key: string): Promise<string> {
    const endpoint = who === 'ours' ? await ours : peer.endpoint;
    const viaPostfix = await postmap(endpoint, key);
    const raw = await socketmapQuery(endpoint, 'postfix', key);
    assert.equal(viaPostfix, raw, `${who} ${key}: postmap and the raw socketmap reply disagree`);
    const seen = answers.get(key) ?? {};
    seen[who] = raw;
    answers.set(key, seen);
    return raw;
  }

  const ENFORCE = 'OK secure match=mx.enforce.test:.backup.enforce.test servername=hostname';
  const rows: Row[] = [
    { key: 'enforce.test', ours: ENFORCE, peer: ENFORCE },
    { key: 'testing.test', ours: 'NOTFOUND ', peer: 'NOTFOUND ' },
    { key: 'none.test', ours: 'NOTFOUND ', peer: 'NOTFOUND ' },
    { key: 'nopolicy.test', ours: 'NOTFOUND ', peer: 'NOTFOUND ' },
    { key: 'garbage.test', ours: 'NOTFOUND ', peer: 'NOTFOUND ' },
    {
      key: 'invalid.test',
      ours: 'NOTFOUND ',
      // "*" becomes an empty pattern and "a b" splits the reply into a bogus extra attribute.
      peer: /^OK secure match=(?=.*a b)[a-z :]* servername=hostname$/,
      why:
        'the policy is invalid (RFC 8461 §3.2: an mx is a host name or "*." + one); ours ignores it, the peer ' +
        'turns "*" into an empty pattern and "a b" into a stray attribute: a broken answer',
    },
    {
      key: 'dane.test',
      ours: 'OK dane-only',
      peer: 'OK secure match=mx.dane.test servername=hostname',
      why:
        'the MX has DNSSEC-secure TLSA records: RFC 8461 §2 says MTA-STS must not override DANE; the peer does ' +
        'not look at DANE',
    },
    {
      key: 'mixed.test',
      ours: 'OK dane-only',
      peer: 'OK secure match=mx1.mixed.test:mx2.mixed.test servername=hostname',
      why:
        'mx1 has usable DNSSEC-secure TLSA, mx2 none, and the policy is enforced: dane-only authenticates mx1 by ' +
        'DANE and refuses mx2 rather than sending to it without the MTA-STS check (docs/policyd.md)',
    },
    {
      key: 'unusable.test',
      ours: 'OK secure match=mx.unusable.test servername=hostname',
      peer: 'OK secure match=mx.unusable.test servername=hostname',
    },
    {
      key: 'bogustlsa.test',
      ours: 'OK dane-only',
      peer: 'OK secure match=mx.bogustlsa.test servername=hostname',
      why:
        'the TLSA lookup fails DNSSEC validation: DANE may apply but cannot be checked, and RFC 8461 §2 forbids ' +
        'MTA-STS to override it; dane-only makes Postfix do its own lookup and defer (RFC 7672 §2.2)',
    },
    {
      key: 'bogus.test',
      ours: 'OK dane-only',
      peer: 'NOTFOUND ',
      why:
        'the MX lookup fails DNSSEC validation: ours lets Postfix look up DANE itself and defer; the peer ' +
        'answers NOTFOUND, so Postfix falls back to its default TLS level for a domain under attack',
    },
    { key: '.enforce.test', ours: 'NOTFOUND ', peer: 'NOTFOUND ' },
    { key: '[enforce.test]:25', ours: ENFORCE, peer: ENFORCE },
    {
      key: 'changed.test',
      ours: 'OK secure match=old.changed.test servername=hostname',
      peer: 'OK secure match=old.changed.test servername=hostname',
    },
  ];

  for (const row of rows) {
    test(`ours: ${row.key}`, async () => {
      expectAnswer(await ask('ours', row.key), row.ours, `ours ${row.key}`);
    });
    test(`peer: ${row.key}`, async () => {
      expectAnswer(await ask('peer', row.key), row.peer, `peer ${row.key}`);
    });
  }

  test('side by side: the agreed rows agree, the others differ as documented', () => {
    const table: string[][] = [['key', 'mxguard policyd', 'postfix-mta-sts-resolver', '']];
    const reasons: string[] = [];
    for (const row of rows) {
      const seen = answers.get(row.key);
      assert.ok(seen?.ours !== undefined && seen.peer !== undefined, `${row.key}: not answered by both`);
      const agreed = row.why === undefined;
      assert.equal(
        sameAnswer(seen.ours, seen.peer),
        agreed,
        `${row.key}: ours "${seen.ours}", peer "${seen.peer}" should ${agreed ? '' : 'not '}agree`,
      );
      table.push([row.key, seen.ours, seen.peer, agreed ? '' : 'differs']);
      if (row.why) reasons.push(`- ${row.key}: ${row.why}`);
    }
    const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
    const lines = table.map((r) => `| ${r.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`);
    lines.splice(1, 0, `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
    console.log(
      ['Postfix postmap answers, side by side:', ...lines, '', 'Why ours differs:', ...reasons].join('\n'),
    );
  });

  // Publish a new policy under a new id, once, for the two tests below. The lab DNS server answers from the
  // record objects it was given, so the TXT record is changed in place: restarting the server instead would
  // leave a moment without DNS, and a daemon whose id check fell into it would wait a minute to retry.
  let changed: Promise<void> | undefined;
  const changePolicy = () => {
    changed ??= (async () => {
      web.setSite('mta-sts.changed.test', { kind: 'serve', body: policy('enforce', ['new.changed.test']) });
      const txt = zones
        .flatMap((z) => z.records)
        .find((r) => r.name === '_mta-sts.changed.test' && r.type === 'TXT');
      assert.ok(txt?.type === 'TXT', 'the lab has no _mta-sts.changed.test TXT record');
      txt.data = ['v=STSv1; id=c2'];
      const resolver = new Resolver({ timeout: 2000, tries: 1 });
      resolver.setServers([DNS.host]);
      const served = (await resolver.resolveTxt('_mta-sts.changed.test')).map((parts) => parts.join(''));
      assert.deepEqual(served, ['v=STSv1; id=c2'], 'the lab DNS server did not take the changed TXT record');
    })();
    return changed;
  };
  for (const who of ['peer', 'ours'] as const) {
    test(`${who}: a changed TXT id brings the new policy (RFC 8461 §5)`, async () => {
      if (who === 'ours') await ours;
      await changePolicy();
      const want = 'OK secure match=new.changed.test servername=hostname';
      // The daemon re-checks the id after ID_RECHECK_SECONDS: poll (bounded) instead of timing it. Raw
      // queries while it switches: `ask` compares a postmap answer with a raw one, and the switch can fall
      // between the two (that race made this test flaky). Once switched, Postfix must see the new answer.
      const endpoint = who === 'ours' ? await ours : peer.endpoint;
      let answer = '';
      for (let i = 0; i < 120 && answer !== want; i++) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        answer = await socketmapQuery(endpoint, 'postfix', 'changed.test');
      }
      // When this fails, the daemon's log says why (a timed-out id check waits a minute, a failed fetch five).
      const log = (who === 'ours' ? oursLog() : peer.log()).split('\n').slice(-15).join('\n');
      assert.equal(answer, want, `${who}: still "${answer}" after the id changed; its log ends:\n${log}`);
      assert.equal(await ask(who, 'changed.test'), want, `${who}: postmap after the switch`);
    });
  }
});

function expectAnswer(answer: string, expected: string | RegExp, what: string): void {
  if (typeof expected === 'string') {
    assert.ok(sameAnswer(answer, expected), `${what}: "${answer}", expected "${expected}"`);
  } else {
    assert.match(answer, expected, what);
  }
}

/** Equal, with the match= patterns compared as sets. */
function sameAnswer(a: string, b: string): boolean {
  const norm = (s: string) =>
    s.replace(/match=(\S*)/, (_, list: string) => `match=${list.split(':').sort().join(':')}`);
  return norm(a) === norm(b);
}

function execText(
  command: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 30_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      if (typeof code !== 'number') reject(new Error(`${command} could not run: ${err?.message}`));
      else resolve({ code, stdout, stderr });
    });
  });
}
