// `mxguard tlsa generate` and `mxguard tlsa verify`, run as the built binary.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import {
  opensslCertDer,
  opensslDigest,
  opensslSpkiDer,
  type StandardChain,
  standardChain,
  type TestCert,
  TestPki,
} from '../helpers/pki.js';

let pki: TestPki;
let ec: StandardChain;
let rsa: StandardChain;
let expired: TestCert;
const files: Record<string, string> = {};

before(() => {
  pki = TestPki.create();
  ec = standardChain(pki, { prefix: 'ec-', keyType: 'ec' });
  rsa = standardChain(pki, { prefix: 'rsa-', keyType: 'rsa' });
  expired = pki.issue('expired', {
    subject: '/CN=mx.example.com',
    issuer: ec.intermediate,
    sans: ['mx.example.com'],
    notBefore: new Date('2001-01-01T00:00:00Z'),
    notAfter: new Date('2002-01-01T00:00:00Z'),
  });
  files.leaf = ec.leaf.certPath;
  files.leafDer = pki.writeFile('leaf.der', ec.leaf.der);
  files.fullchain = pki.writeChain('fullchain.pem', [ec.leaf, ec.intermediate]);
  files.cas = pki.writeChain('cas.pem', [ec.intermediate, ec.root]);
  files.intermediate = ec.intermediate.certPath;
  files.expiredChain = pki.writeChain('expired-chain.pem', [expired, ec.intermediate]);
  files.garbage = pki.writeFile('garbage.pem', 'this is not a certificate\n');
  files.keyOnly = ec.leaf.key.path;
  files.missing = `${pki.dir}/missing.pem`;
});
after(() => pki.remove());

const spki256 = (c: TestCert) => opensslDigest(opensslSpkiDer(c.certPath), 'sha256');

describe('tlsa generate', () => {
  it('prints the recommended 3 1 1 by default, matching openssl, with a rollover hint', () => {
    const r = runCli(['tlsa', 'generate', '--cert', files.leaf as string]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `3 1 1 ${spki256(ec.leaf)}\n`);
    assert.match(r.stderr, /^hint: .*3 1 1 of the next key.*2 1 1 for the issuing CA/m);
  });

  it('reads DER and RSA certificates', () => {
    assert.equal(
      runCli(['tlsa', 'generate', '--cert', files.leafDer as string]).stdout,
      `3 1 1 ${spki256(ec.leaf)}\n`,
    );
    const r = runCli([
      'tlsa',
      'generate',
      '--cert',
      rsa.leaf.certPath,
      '--selector',
      'Cert',
      '--mtype',
      'SHA2-512',
    ]);
    assert.equal(r.stdout, `3 0 2 ${opensslDigest(opensslCertDer(rsa.leaf.certPath), 'sha512')}\n`);
  });

  it('prints the owner name with --host and --port', () => {
    const r = runCli(['tlsa', 'generate', '--cert', files.leaf as string, '--host', 'MX.Example.com.']);
    assert.equal(r.stdout, `_25._tcp.mx.example.com. IN TLSA 3 1 1 ${spki256(ec.leaf)}\n`);
    const r465 = runCli([
      'tlsa',
      'generate',
      '--cert',
      files.leaf as string,
      '--host',
      'mx.example.com',
      '--port',
      '465',
    ]);
    assert.match(r465.stdout, /^_465\._tcp\.mx\.example\.com\. IN TLSA 3 1 1 /);
  });

  it('prints full data with --mtype 0', () => {
    const r = runCli(['tlsa', 'generate', '--cert', files.leaf as string, '--mtype', '0']);
    assert.equal(r.stdout, `3 1 0 ${opensslSpkiDer(ec.leaf.certPath).toString('hex')}\n`);
  });

  it('uses the last certificate of the --cert chain file for DANE-TA and says so', () => {
    const r = runCli(['tlsa', 'generate', '--cert', files.fullchain as string, '--usage', 'DANE-TA']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `2 1 1 ${spki256(ec.intermediate)}\n`);
    assert.match(
      r.stderr,
      /pins certificate 2 of 2 \(O=mxguard test, CN=ec-Issuing CA\), the last one in .*fullchain\.pem/,
    );
  });

  it('uses the last certificate of --chain and warns about a self-signed root', () => {
    const r = runCli([
      'tlsa',
      'generate',
      '--cert',
      files.leaf as string,
      '--chain',
      files.cas as string,
      '--usage',
      '2',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `2 1 1 ${spki256(ec.root)}\n`);
    assert.match(
      r.stderr,
      /certificate 3 of 3 \(O=mxguard test, CN=ec-Root CA\), the last one in .*cas\.pem/,
    );
    assert.match(r.stderr, /self-signed root/);
  });

  it('refuses DANE-TA without a CA certificate', () => {
    const r = runCli(['tlsa', 'generate', '--cert', files.leaf as string, '--usage', '2']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--usage 2: .*leaf\.pem holds only a leaf \(not a CA\) certificate.*--chain/);
    assert.equal(r.stdout, '');
  });

  it('takes a lone CA certificate as the DANE-TA anchor', () => {
    const r = runCli(['tlsa', 'generate', '--cert', files.intermediate as string, '--usage', '2']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `2 1 1 ${spki256(ec.intermediate)}\n`);
  });

  it('--all prints each combination with a comment; CA records only with a chain', () => {
    const withChain = runCli([
      'tlsa',
      'generate',
      '--cert',
      files.leaf as string,
      '--chain',
      files.intermediate as string,
      '--all',
      '--host',
      'mx.example.com',
    ]);
    assert.equal(withChain.code, 0, withChain.stderr);
    const lines = withChain.stdout.trim().split('\n');
    assert.deepEqual(
      lines.map((l) => l.split(' ').slice(3, 6).join(' ')),
      ['3 1 1', '3 1 2', '3 0 1', '3 0 2', '2 1 1', '2 1 2', '2 0 1', '2 0 2'],
    );
    assert.ok(lines.every((l) => l.startsWith('_25._tcp.mx.example.com. IN TLSA ') && l.includes(' ; ')));
    assert.match(
      lines[0] as string,
      /; DANE-EE\(3\) SPKI\(1\) SHA2-256\(1\): SHA-256 of the server's public key .*recommended/,
    );
    assert.ok(lines[4]?.includes(`2 1 1 ${spki256(ec.intermediate)} ; `));
    const leafOnly = runCli(['tlsa', 'generate', '--cert', files.leaf as string, '--all']);
    assert.equal(leafOnly.stdout.trim().split('\n').length, 4);
  });

  it('--all does not mix with --usage, --selector or --mtype', () => {
    const r = runCli(['tlsa', 'generate', '--cert', files.leaf as string, '--all', '--mtype', '0']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--all prints every combination/);
  });

  it('--json gives the records as data', () => {
    const r = runCli([
      'tlsa',
      'generate',
      '--cert',
      files.fullchain as string,
      '--host',
      'mx.example.com',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.owner, '_25._tcp.mx.example.com.');
    assert.equal(out.records.length, 1);
    assert.equal(out.records[0].data, spki256(ec.leaf));
    assert.equal(out.records[0].record, `_25._tcp.mx.example.com. IN TLSA 3 1 1 ${spki256(ec.leaf)}`);
    assert.equal(out.records[0].certificate.index, 0);
    assert.match(out.hint, new RegExp(`2 1 1 ${spki256(ec.intermediate)}`));
  });

  it('rejects bad options and unreadable or invalid files with exit 2 naming them', () => {
    const table: Array<[string[], RegExp]> = [
      [['--usage', 'DANE-XX'], /--usage: "DANE-XX" is not a number 0-255 or a known usage/],
      [['--usage', '7'], /--usage: only 0-3 can be generated/],
      [['--selector', '2'], /--selector: only 0 \(Cert\) or 1 \(SPKI\)/],
      [['--mtype', '9'], /--mtype: only 0, 1 or 2/],
      [['--port', '70000'], /--port: must be between 0 and 65535/],
      [['--host', 'bad host'], /--host: "bad host" is not a valid host name/],
    ];
    for (const [args, message] of table) {
      const r = runCli(['tlsa', 'generate', '--cert', files.leaf as string, ...args]);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, message);
    }
    for (const [file, message] of [
      [files.missing, /missing\.pem: cannot read: no such file/],
      [files.garbage, /garbage\.pem: not a certificate/],
      [files.keyOnly, /\.pem: no CERTIFICATE block \(found only: PRIVATE KEY\)/],
    ] as const) {
      const r = runCli(['tlsa', 'generate', '--cert', file as string]);
      assert.equal(r.code, 2, file);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
  });

  it('--help explains the trust anchor choice and has examples', () => {
    const r = runCli(['tlsa', 'generate', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /LAST certificate of --chain/);
    assert.match(r.stdout, /Examples:\n {2}\$ mxguard tlsa generate/);
  });
});

describe('tlsa verify', () => {
  const verify = (...args: string[]) => runCli(['tlsa', 'verify', ...args]);

  it('exits 0 on a DANE-EE match and explains each record', () => {
    const r = verify(
      '--cert',
      files.leaf as string,
      '--record',
      `3 1 1 ${spki256(ec.leaf)}`,
      '--record',
      '1 1 1 00'.padEnd(70, '0'),
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^certificate 0: CN=mx\.example\.com \(leaf; 2020-01-01 to 2090-01-01\)$/m);
    assert.match(r.stdout, /^record 1: 3 1 1 [0-9a-f]{64}: match: matches the leaf public key/m);
    assert.match(r.stdout, /^record 2: 1 1 1 0+: unusable: .*not used for SMTP/m);
    assert.match(r.stdout, /^result: match \(record 1, certificate 0\)$/m);
  });

  it('exits 1 on a mismatch', () => {
    const r = verify('--cert', files.leaf as string, '--record', `3 1 1 ${spki256(rsa.leaf)}`);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /record 1: .*: no match: does not match the leaf public key/);
    assert.match(r.stdout, /^result: no match/m);
  });

  it('DANE-EE ignores an expired leaf; DANE-TA does not', () => {
    const ee = verify('--cert', files.expiredChain as string, '--record', `3 1 1 ${spki256(expired)}`);
    assert.equal(ee.code, 0, ee.stdout);
    const ta = verify(
      '--cert',
      files.expiredChain as string,
      '--host',
      'mx.example.com',
      '--record',
      `2 1 1 ${spki256(ec.intermediate)}`,
    );
    assert.equal(ta.code, 1, ta.stdout);
    assert.match(ta.stdout, /certificate 0 \(CN=mx\.example\.com\) expired on 2002-01-01/);
  });

  it('DANE-TA needs --host and matches with it, using --chain after --cert', () => {
    const record = `2 1 1 ${spki256(ec.root)}`;
    const withoutHost = verify(
      '--cert',
      files.leaf as string,
      '--chain',
      files.cas as string,
      '--record',
      record,
    );
    assert.equal(withoutHost.code, 1);
    assert.match(withoutHost.stdout, /DANE-TA needs --host/);
    assert.match(withoutHost.stderr, /leaf\.pem: warning \[DANE_TA_NEEDS_HOST\]/);
    const withHost = verify(
      '--cert',
      files.leaf as string,
      '--chain',
      files.cas as string,
      '--host',
      'mx.example.com',
      '--record',
      record,
    );
    assert.equal(withHost.code, 0, withHost.stdout);
    assert.match(withHost.stdout, /^result: match \(record 1, certificate 2\)$/m);
    const wrongHost = verify(
      '--cert',
      files.leaf as string,
      '--chain',
      files.cas as string,
      '--host',
      'mx.example.net',
      '--record',
      record,
    );
    assert.equal(wrongHost.code, 1);
    assert.match(wrongHost.stdout, /does not match the host name mx\.example\.net/);
  });

  it('exits 1 when no record is usable', () => {
    const r = verify('--cert', files.leaf as string, '--record', `1 1 1 ${spki256(ec.leaf)}`);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^result: no usable records/m);
    assert.match(r.stderr, /warning \[DANE_NO_USABLE_RECORDS\]/);
  });

  it('a --record that does not parse is invalid content: exit 1 naming the record', () => {
    const r = verify(
      '--cert',
      files.leaf as string,
      '--record',
      `3 1 1 ${spki256(ec.leaf)}`,
      '--record',
      '3 1 1 abc',
    );
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^--record 2: error \[DANE_TLSA_DATA\] certificate association data: odd number of hex digits/m,
    );
    assert.equal(r.stdout, '');
  });

  it('an unreadable or unparseable certificate file is exit 2 naming the file', () => {
    const record = `3 1 1 ${spki256(ec.leaf)}`;
    for (const [args, message] of [
      [['--cert', files.missing as string], /missing\.pem: cannot read: no such file/],
      [['--cert', files.garbage as string], /garbage\.pem: not a certificate/],
      [['--cert', files.leaf as string, '--chain', files.garbage as string], /garbage\.pem: /],
    ] as const) {
      const r = verify(...args, '--record', record);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, message);
    }
    assert.equal(verify('--cert', files.leaf as string).code, 2);
  });

  it('--json gives the verdict as data', () => {
    const r = verify(
      '--cert',
      files.fullchain as string,
      '--host',
      'mx.example.com',
      '--record',
      `3 1 1 ${spki256(rsa.leaf)}`,
      '--record',
      `2 0 1 ${opensslDigest(opensslCertDer(ec.intermediate.certPath), 'sha256')}`,
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.status, 'match');
    assert.deepEqual(out.matched.recordIndex, 1);
    assert.equal(out.matched.certIndex, 1);
    assert.deepEqual(
      out.records.map((x: { matches: boolean; usable: boolean }) => [x.usable, x.matches]),
      [
        [true, false],
        [true, true],
      ],
    );
    assert.equal(out.chain.length, 2);
    assert.equal(out.chain[1].ca, true);
  });

  it('--help explains the rules and exit codes', () => {
    const r = runCli(['tlsa', 'verify', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /DANE-EE \(3\) {2}matches the leaf/);
    assert.match(r.stdout, /Exit codes: 0/);
  });
});
