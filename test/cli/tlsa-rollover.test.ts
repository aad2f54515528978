// `mxguard tlsa rollover` (built binary): the plan against the RRset a lab DNS server holds, --generate-next-key,
// and the refusals. Record data is checked against openssl; publishing is proven in test/dane/rollover-lab.test.ts.
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { runCliAsync } from '../helpers/cli.js';
import { openssl, opensslDigest, opensslSpkiDer, type TestCert, TestPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { type LabDnsServer, startDnsServer } from '../lab/dns-server.js';

const HOST = 'mx.lab.test';
const OWNER = `_25._tcp.${HOST}.`;

let pki: TestPki;
let current: TestCert;
let nextCert: TestCert;
let nextKey: string;
let currentHex: string;
let nextHex: string;
let dns: LabDnsServer;

const tlsa = (hex: string, ttl: number) => ({
  name: `_25._tcp.${HOST}`,
  type: 'TLSA' as const,
  ttl,
  data: { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.from(hex, 'hex') },
});

before(async () => {
  pki = TestPki.create();
  current = pki.issue('current', { subject: `/CN=${HOST}`, sans: [HOST] });
  nextCert = pki.issue('next', { subject: `/CN=${HOST}`, sans: [HOST], key: 'rsa' });
  nextKey = nextCert.key.path;
  currentHex = opensslDigest(opensslSpkiDer(current.certPath), 'sha256');
  nextHex = opensslDigest(opensslSpkiDer(nextCert.certPath), 'sha256');
  dns = await startDnsServer([
    { origin: 'lab.test', records: [tlsa(currentHex, 600)] },
    {
      origin: 'both.test',
      records: [tlsa(currentHex, 900), tlsa(nextHex, 900)].map((r) => ({
        ...r,
        name: '_25._tcp.mx.both.test',
      })),
    },
  ]);
});
after(async () => {
  await dns?.stop();
  pki?.remove();
});

const resolver = () => ['--resolver', `${dns.host}:${dns.port}`, '--timeout', '2'];
const rollover = (...args: string[]) => runCliAsync(['tlsa', 'rollover', ...args, ...resolver()]);
/** A rollover of the lab host's current certificate. */
const rollCurrent = (...args: string[]) => rollover('--host', HOST, '--cert', current.certPath, ...args);
const spkiHexOfKey = (file: string) =>
  opensslDigest(openssl(['pkey', '-in', file, '-pubout', '-outform', 'DER']), 'sha256');

describe('tlsa rollover', () => {
  it('prints current + next with the TTL read from DNS and the four steps', async () => {
    const r = await rollCurrent('--next-key', nextKey);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.ok(lines.includes(`; RRset to publish now (TTL 600, from DNS):`), r.stdout);
    assert.ok(lines.some((l) => l.startsWith(`${OWNER} IN TLSA 3 1 1 ${currentHex} ; current key`)));
    assert.ok(lines.some((l) => l.startsWith(`${OWNER} IN TLSA 3 1 1 ${nextHex} ; next key: ${nextKey}`)));
    assert.match(r.stdout, /1\. \[todo\] publish/);
    assert.match(r.stdout, /2\. \[todo\] wait at least 2 x TTL = 1200 s/);
    assert.match(r.stdout, /4\. \[todo\] replace the RRset/);
  });

  it('--json: the same plan as data; --next-cert gives the same next record as its key', async () => {
    const r = await rollCurrent('--next-cert', nextCert.certPath, '--json');
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout);
    assert.equal(plan.owner, OWNER);
    assert.deepEqual(plan.publishNow, [`3 1 1 ${currentHex}`, `3 1 1 ${nextHex}`]);
    assert.deepEqual(plan.afterDeploy, [`3 1 1 ${nextHex}`]);
    assert.deepEqual([plan.ttl, plan.ttlSource, plan.waitSeconds, plan.dnsRead], [600, 'dns', 1200, true]);
    assert.deepEqual(
      plan.steps.map((s: { step: string }) => s.step),
      ['publish', 'wait', 'deploy', 'drop-old'],
    );
    assert.equal(plan.published, null);
  });

  it('--ttl above the TTL DNS reports wins (a cache reports what it has left)', async () => {
    const r = await rollCurrent('--next-key', nextKey, '--ttl', '3600', '--json');
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout);
    assert.deepEqual([plan.ttl, plan.ttlSource, plan.waitSeconds], [3600, 'option', 7200]);
  });

  it('--generate-next-key: a new EC P-256 key, mode 600, its record in the plan; never overwrites', async () => {
    const file = `${pki.dir}/generated-ec.key`;
    const r = await rollCurrent('--generate-next-key', file, '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.match(openssl(['pkey', '-in', file, '-noout', '-text']).toString(), /prime256v1|P-256/);
    const plan = JSON.parse(r.stdout);
    assert.equal(plan.next.record, `3 1 1 ${spkiHexOfKey(file)}`);
    assert.equal(plan.next.generated, true);

    const before = readFileSync(file);
    const again = await rollCurrent('--generate-next-key', file);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /generated-ec\.key: the file exists; not overwriting a key/);
    assert.deepEqual(readFileSync(file), before);
  });

  it('--key-type rsa: RSA 2048', async () => {
    const file = `${pki.dir}/generated-rsa.key`;
    const r = await rollCurrent('--generate-next-key', file, '--key-type', 'rsa');
    assert.equal(r.code, 0, r.stderr);
    assert.match(openssl(['pkey', '-in', file, '-noout', '-text']).toString(), /2048 bit/);
    assert.match(r.stdout, new RegExp(`3 1 1 ${spkiHexOfKey(file)} ; next key`));
  });

  it('the publish step is done when DNS holds both records; DNS unreachable needs --ttl', async () => {
    const both = await runCliAsync([
      'tlsa',
      'rollover',
      '--host',
      'mx.both.test',
      '--cert',
      current.certPath,
      '--next-key',
      nextKey,
      '--json',
      ...resolver(),
    ]);
    // mx.both.test holds the current and the next record already (TTL 900): the publish step is done.
    assert.equal(both.code, 0, both.stderr);
    assert.equal(JSON.parse(both.stdout).ttl, 900);
    assert.equal(JSON.parse(both.stdout).steps[0].done, true);

    const silent = ['--resolver', `127.0.0.1:${await freePort()}`, '--timeout', '1'];
    const offline = (...extra: string[]) =>
      runCliAsync([
        'tlsa',
        'rollover',
        '--host',
        HOST,
        '--cert',
        current.certPath,
        '--next-key',
        nextKey,
        ...extra,
        ...silent,
      ]);
    const down = await offline();
    assert.equal(down.code, 2);
    assert.match(down.stderr, /TTL of the TLSA RRset is unknown.*--ttl/);
    const given = await offline('--ttl', '300');
    assert.equal(given.code, 0, given.stderr);
    assert.match(given.stdout, /TTL 300, from --ttl\)/);
  });

  it('refusals: next key = current key, key/cert mismatch, unreadable files, no next key, exit 2', async () => {
    const same = await rollCurrent('--next-key', current.key.path);
    assert.equal(same.code, 2);
    assert.match(same.stderr, /next key is the key of the current certificate/);

    const mismatch = await rollCurrent('--next-key', current.key.path, '--next-cert', nextCert.certPath);
    assert.equal(mismatch.code, 2);
    assert.match(mismatch.stderr, /is not the key of the certificate in .*next\.pem/);

    const missing = await rollover('--host', HOST, '--cert', `${pki.dir}/nope.pem`, '--next-key', nextKey);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.pem/);

    const garbage = pki.writeFile('garbage.key', 'not a key\n');
    const notKey = await rollCurrent('--next-key', garbage);
    assert.equal(notKey.code, 2);
    assert.match(notKey.stderr, /garbage\.key: not a PEM private or public key/);

    const none = await rollover('--host', HOST, '--cert', current.certPath);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /give the next key/);

    const halfPublisher = await rollCurrent('--next-key', nextKey, '--dns-server', '127.0.0.1');
    assert.equal(halfPublisher.code, 2);
    assert.match(halfPublisher.stderr, /--dns-server and --tsig-key go together/);
  });

  it('tlsa publish and tlsa hook certbot need --dns-server and --tsig-key: exit 2', async () => {
    const publish = await runCliAsync(['tlsa', 'publish', '--host', HOST, '--cert', current.certPath]);
    assert.equal(publish.code, 2);
    assert.match(publish.stderr, /tlsa publish needs --dns-server and --tsig-key/);
    const hook = await runCliAsync([
      'tlsa',
      'hook',
      'certbot',
      '--host',
      HOST,
      '--cert',
      current.certPath,
      '--key',
      current.key.path,
    ]);
    assert.equal(hook.code, 2);
    assert.match(hook.stderr, /tlsa hook certbot needs --dns-server and --tsig-key/);
  });
});
