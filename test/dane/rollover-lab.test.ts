// A full TLSA key rollover (RFC 7671 §8.1) in a real lab, through the built CLI: knotd signs roll.test and takes
// TSIG-signed DNS UPDATEs (test/lab/knot-update.ts), unbound validates, a lab SMTP server presents the certificate.
// current (K1) -> `tlsa rollover --generate-next-key` publishes K1 + K2 -> the certbot hook refuses to call K2
// safe before 2 x TTL -> after the wait the SMTP server swaps to K2 -> the hook drops K1 and stages K3.
// `mxguard check` passes DANE at every step, with rollover cover once two keys are published; the RRsets are
// read back from knotd and through the validating resolver (AD). Last, a renewal with a key never published.
//
// Needs root (port 53 on 127.0.56.x) and the Debian packages knot, unbound, bind9-dnsutils.
// Addresses: 127.0.56.1 knotd, .2 unbound, .25 the SMTP server; no other test file uses 127.0.56.x.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DnsClient } from '../../src/dns/client.js';
import { runCli, runCliAsync } from '../helpers/cli.js';
import { openssl, opensslDigest, opensslSpkiDer, type TestCert, TestPki } from '../helpers/pki.js';
import { type KnotUpdateLab, startKnotUpdateLab } from '../lab/knot-update.js';
import { type LabSmtpServer, startSmtpServer } from '../lab/smtp-server.js';

const DOMAIN = 'roll.test';
const HOST = `mx.${DOMAIN}`;
const OWNER = `_25._tcp.${HOST}`;
const SMTP_ADDRESS = '127.0.56.25';
/** Short, so the test waits 2 x TTL for real; long enough that two CLI runs in a row fall inside it. */
const TTL = 15;

let pki: TestPki;
let root: TestCert;
let leaf1: TestCert;
let lab: KnotUpdateLab;
let smtp: LabSmtpServer;
let smtpPort: number;
let dataDir: string;

const spkiHex = (cert: TestCert) => opensslDigest(opensslSpkiDer(cert.certPath), 'sha256');
const keyHex = (keyFile: string) =>
  opensslDigest(openssl(['pkey', '-in', keyFile, '-pubout', '-outform', 'DER']), 'sha256');
const issue = (name: string, keyPath: string) =>
  pki.issue(name, { subject: `/CN=${HOST}`, issuer: root, sans: [HOST], key: { type: 'ec', path: keyPath } });

async function serve(cert: TestCert): Promise<void> {
  await smtp?.stop();
  smtp = await startSmtpServer({
    host: SMTP_ADDRESS,
    port: smtpPort,
    hostname: HOST,
    cert: { key: readFileSync(cert.key.path, 'utf8'), cert: cert.pem },
  });
  smtpPort = smtp.port;
}

before(async () => {
  pki = TestPki.create();
  root = pki.issue('root', { subject: '/CN=Lab Root' });
  leaf1 = pki.issue('leaf1', { subject: `/CN=${HOST}`, issuer: root, sans: [HOST] });
  dataDir = `${pki.dir}/data`;
  lab = await startKnotUpdateLab({
    zones: [
      {
        name: DOMAIN,
        records: ['@ MX 10 mx', `mx A ${SMTP_ADDRESS}`, `_25._tcp.mx ${TTL} TLSA 3 1 1 ${spkiHex(leaf1)}`],
      },
    ],
    keys: [{ name: 'upd', algorithm: 'hmac-sha256', zones: [DOMAIN] }],
    authoritativeAddress: '127.0.56.1',
    resolverAddress: '127.0.56.2',
  });
  smtpPort = 0;
  await serve(leaf1);
});

after(async () => {
  await smtp?.stop();
  await lab?.stop();
  pki?.remove();
});

const publisher = () => [
  '--dns-server',
  `${lab.authoritative.host}:${lab.authoritative.port}`,
  '--tsig-key',
  lab.keyFiles.upd as string,
  '--data-dir',
  dataDir,
  '--timeout',
  '5',
];

/**
 * Assert the dane findings of `mxguard check` (through the validating resolver) about the MX host, as sorted
 * "status CODE" lines; the whole report is the failure message.
 */
async function assertDane(expected: string[]): Promise<void> {
  const r = await runCliAsync([
    'check',
    DOMAIN,
    '--json',
    '--resolver',
    `${lab.resolver.host}:${lab.resolver.port}`,
    '--allow-private',
    '--smtp-port',
    String(smtpPort),
    '--timeout',
    '10',
  ]);
  const report = JSON.parse(r.stdout || '{"findings": []}') as {
    findings: { section: string; status: string; code: string; host?: string }[];
  };
  const dane = report.findings
    .filter((f) => f.section === 'dane' && f.host === HOST)
    .map((f) => `${f.status} ${f.code}`)
    .sort();
  assert.deepEqual(dane, expected, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
}

/** The TLSA RRset as the validating resolver answers it: AD and the records. */
async function validated(): Promise<{ secure: boolean; records: string[] }> {
  const client = new DnsClient({ servers: [lab.resolver], timeoutMs: 3000 });
  const lookup = await client.tlsa(OWNER);
  return {
    secure: lookup.secure,
    records: lookup.values
      .map((v) => `${v.usage} ${v.selector} ${v.matchingType} ${v.data.toString('hex')}`)
      .sort(),
  };
}

const sorted = (...records: string[]) => [...records].sort();

/** `mxguard tlsa hook certbot` as acme.sh or dehydrated call it (--cert/--key), publishing to knotd. */
const hook = (cert: string, key: string, ...extra: string[]) =>
  runCliAsync([
    'tlsa',
    'hook',
    'certbot',
    '--host',
    HOST,
    '--cert',
    cert,
    '--key',
    key,
    ...extra,
    ...publisher(),
  ]);

describe('a full TLSA rollover through knotd, unbound and the lab SMTP server', () => {
  const k1 = () => `3 1 1 ${spkiHex(leaf1)}`;
  let key2: string;
  let leaf2: TestCert;
  let safeAt: Date;

  it('step 0: the current key alone: DANE passes, no rollover cover', async () => {
    await assertDane(['pass DANE_TLSA_MATCH', 'warn DANE_ROLLOVER_NOT_READY']);
  });

  it('step 1: tlsa rollover --generate-next-key publishes current + next (TTL from knotd)', async () => {
    key2 = `${pki.dir}/next.key`;
    const r = await runCliAsync([
      'tlsa',
      'rollover',
      '--host',
      HOST,
      '--cert',
      leaf1.certPath,
      '--generate-next-key',
      key2,
      '--json',
      ...publisher(),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout);
    const k2 = `3 1 1 ${keyHex(key2)}`;
    assert.deepEqual(plan.publishNow, [k1(), k2]);
    assert.deepEqual([plan.ttl, plan.ttlSource, plan.waitSeconds], [TTL, 'dns', 2 * TTL]);
    assert.equal(plan.published.zone, DOMAIN);
    assert.equal(plan.steps[0].done, true);
    assert.deepEqual(await lab.authoritativeRRset(OWNER, 'TLSA'), sorted(k1(), k2));
    leaf2 = issue('leaf2', key2);
  });

  it('step 2: the certbot hook right after: the new key is not safe yet, exit 1, nothing dropped', async () => {
    const r = await hook(leaf2.certPath, key2, '--json');
    assert.equal(r.code, 1, r.stderr);
    const verdict = JSON.parse(r.stdout);
    assert.equal(verdict.status, 'too-early');
    assert.equal(verdict.updated, false);
    assert.match(verdict.message, /DANE WARNING: .*Put the previous certificate and key back until/);
    safeAt = new Date(verdict.safeAt);
    assert.equal(safeAt.getTime() - Date.parse(verdict.publishedSince), 2 * TTL * 1000);
    assert.deepEqual(await lab.authoritativeRRset(OWNER, 'TLSA'), sorted(k1(), `3 1 1 ${keyHex(key2)}`));
  });

  it('step 3: after 2 x TTL the resolver validates both; the server still on K1 has rollover cover', async () => {
    await sleep(Math.max(0, safeAt.getTime() - Date.now()) + 500);
    assert.deepEqual(await validated(), { secure: true, records: sorted(k1(), `3 1 1 ${keyHex(key2)}`) });
    await assertDane(['pass DANE_ROLLOVER_READY', 'pass DANE_TLSA_MATCH']);
  });

  it('step 4: the server swaps to K2 now that it is safe: DANE still passes, with cover', async () => {
    await serve(leaf2);
    await assertDane(['pass DANE_ROLLOVER_READY', 'pass DANE_TLSA_MATCH']);
  });

  it('step 5: the hook now drops K1 and stages K3; after a TTL the resolver and check see next + following', async () => {
    const key3 = pki.newKey('ec').path;
    const k2 = `3 1 1 ${keyHex(key2)}`;
    const k3 = `3 1 1 ${keyHex(key3)}`;
    const r = await hook(leaf2.certPath, key2, '--next-key', key3, '--json');
    assert.equal(r.code, 0, r.stderr);
    const verdict = JSON.parse(r.stdout);
    assert.equal(verdict.status, 'safe');
    assert.deepEqual(verdict.dropped, [k1()]);
    assert.deepEqual(await lab.authoritativeRRset(OWNER, 'TLSA'), sorted(k2, k3));
    await sleep((TTL + 1) * 1000);
    assert.deepEqual(await validated(), { secure: true, records: sorted(k2, k3) });
    await assertDane(['pass DANE_ROLLOVER_READY', 'pass DANE_TLSA_MATCH']);
  });

  it('a renewal with a key never published: exit 1, published beside the others at once, nothing dropped', async () => {
    const before = await lab.authoritativeRRset(OWNER, 'TLSA');
    const key4 = pki.newKey('ec').path;
    const leaf4 = issue('leaf4', key4);
    const r = await hook(leaf4.certPath, key4);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /DANE ERROR: .*was NOT in DNS/);
    assert.deepEqual(await lab.authoritativeRRset(OWNER, 'TLSA'), sorted(...before, `3 1 1 ${keyHex(key4)}`));
  });

  it('a key file that is not the certificate key: exit 2, nothing changed', async () => {
    const before = await lab.authoritativeRRset(OWNER, 'TLSA');
    const r = await hook(leaf1.certPath, key2);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /next\.key is not the key of the certificate in .*leaf1\.pem/);
    assert.deepEqual(await lab.authoritativeRRset(OWNER, 'TLSA'), before);
  });
});

describe('tlsa publish and the hook under certbot, against the same knotd', () => {
  const host = `mx2.${DOMAIN}`;
  const owner = `_25._tcp.${host}`;

  it('publishes the certificate key and a next key; a second run sends nothing', async () => {
    const next = pki.newKey('ec').path;
    const args = [
      'tlsa',
      'publish',
      '--host',
      host,
      '--cert',
      leaf1.certPath,
      '--next-key',
      next,
      '--ttl',
      '60',
    ];
    const first = await runCliAsync([...args, ...publisher()]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /; zone roll\.test: RRset replaced/);
    const want = sorted(`3 1 1 ${spkiHex(leaf1)}`, `3 1 1 ${keyHex(next)}`);
    assert.deepEqual(await lab.authoritativeRRset(owner, 'TLSA'), want);
    const again = await runCliAsync([...args, '--json', ...publisher()]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout).changed, []);
  });

  it('a TSIG key the server does not know: exit 1 with the named error; a server that is down: exit 2', async () => {
    const before = await lab.authoritativeRRset(owner, 'TLSA');
    const secret = Buffer.alloc(32, 7).toString('base64');
    const wrongKey = pki.writeFile('wrong.key', `hmac-sha256:intruder:${secret}\n`);
    const leaf = issue('leaf-wrong', pki.newKey('ec').path);
    const base = ['tlsa', 'publish', '--host', host, '--cert', leaf.certPath];
    const wrong = await runCliAsync([
      ...base,
      '--dns-server',
      `${lab.authoritative.host}:${lab.authoritative.port}`,
      '--tsig-key',
      wrongKey,
      '--data-dir',
      dataDir,
    ]);
    assert.equal(wrong.code, 1, wrong.stderr);
    assert.match(wrong.stderr, /DNS UPDATE of _25\._tcp\.mx2\.roll\.test\. at 127\.0\.56\.1: TSIG_BADKEY/);
    const down = await runCliAsync([
      ...base,
      '--dns-server',
      '127.0.56.9',
      '--tsig-key',
      lab.keyFiles.upd as string,
      '--data-dir',
      dataDir,
      '--timeout',
      '2',
    ]);
    assert.equal(down.code, 2, down.stderr);
    assert.match(down.stderr, /UPDATE_(UNREACHABLE|TIMEOUT)/);
    assert.deepEqual(await lab.authoritativeRRset(owner, 'TLSA'), before);
  });

  it('a state file that is not ours stops before anything is published: exit 2', async () => {
    const before = await lab.authoritativeRRset(owner, 'TLSA');
    const brokenDir = `${pki.dir}/broken-data`;
    mkdirSync(brokenDir);
    pki.writeFile('broken-data/tlsa-rollover.json', '{"version": 7}');
    const args = [
      'tlsa',
      'publish',
      '--host',
      host,
      '--cert',
      issue('leaf-state', pki.newKey('ec').path).certPath,
    ];
    const r = await runCliAsync([...args, ...publisher(), '--data-dir', brokenDir]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /broken-data\/tlsa-rollover\.json: not a TLSA rollover state file/);
    assert.deepEqual(await lab.authoritativeRRset(owner, 'TLSA'), before);
  });

  it('the hook reads RENEWED_LINEAGE as certbot sets it (a record published just now is not safe yet)', () => {
    const lineage = `${pki.dir}/live-mx2`;
    mkdirSync(lineage);
    pki.writeFile('live-mx2/cert.pem', leaf1.pem);
    pki.writeFile('live-mx2/privkey.pem', readFileSync(leaf1.key.path));
    const r = runCli(['tlsa', 'hook', 'certbot', '--host', host, '--json', ...publisher()], {
      env: { RENEWED_LINEAGE: lineage },
    });
    assert.equal(r.code, 1, r.stderr);
    const verdict = JSON.parse(r.stdout);
    assert.equal(verdict.status, 'too-early');
    assert.equal(verdict.deployed, `3 1 1 ${spkiHex(leaf1)}`);
    const missing = runCli(['tlsa', 'hook', 'certbot', '--host', host, ...publisher()], {
      env: { RENEWED_LINEAGE: '' },
    });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /RENEWED_LINEAGE is not set/);
  });
});
