// `mxguard tlsa from-host` (built binary) against a lab SMTP server (STARTTLS) and a plain TLS server (implicit
// TLS) on loopback, names from the lab DNS server; record data checked against openssl.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { runCliAsync } from '../helpers/cli.js';
import { opensslDigest, opensslSpkiDer, type StandardChain, standardChain, TestPki } from '../helpers/pki.js';
import { type LabDnsServer, startDnsServer } from '../lab/dns-server.js';
import { type LabSmtpServer, startSmtpServer } from '../lab/smtp-server.js';

let pki: TestPki;
let chain: StandardChain;
let dns: LabDnsServer;
let smtp: LabSmtpServer;
let plainSmtp: LabSmtpServer;
let implicit: tls.Server;
let implicitPort: number;
let implicitSni: string[];

const HOST = 'mx.lab.test';

before(async () => {
  pki = TestPki.create();
  chain = standardChain(pki, { host: HOST });
  dns = await startDnsServer([
    {
      origin: 'lab.test',
      records: [{ name: HOST, type: 'A', data: '127.0.0.1' }],
    },
  ]);
  const cert = {
    key: readFileSync(chain.leaf.key.path, 'utf8'),
    cert: chain.leaf.pem + chain.intermediate.pem,
  };
  smtp = await startSmtpServer({ cert });
  plainSmtp = await startSmtpServer({});
  implicitSni = [];
  implicit = tls.createServer(
    {
      ...cert,
      SNICallback: (name, done) => {
        implicitSni.push(name);
        done(null, undefined);
      },
    },
    (socket) => socket.end(),
  );
  await new Promise<void>((resolve) => implicit.listen(0, '127.0.0.1', resolve));
  implicitPort = (implicit.address() as { port: number }).port;
});

after(async () => {
  await smtp?.stop();
  await plainSmtp?.stop();
  await new Promise<void>((resolve) => (implicit ? implicit.close(() => resolve()) : resolve()));
  await dns?.stop();
  pki?.remove();
});

const lab = () => ['--resolver', `${dns.host}:${dns.port}`, '--allow-private', '--timeout', '5'];
const spki256 = (certPath: string) => opensslDigest(opensslSpkiDer(certPath), 'sha256');

describe('tlsa from-host', () => {
  it('STARTTLS (any port but the implicit-TLS ones): the 3 1 1 of the presented key, owner _PORT._tcp.HOST', async () => {
    const before = smtp.sessions.length;
    const r = await runCliAsync(['tlsa', 'from-host', `${HOST}:${smtp.port}`, ...lab()]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `_${smtp.port}._tcp.${HOST}. IN TLSA 3 1 1 ${spki256(chain.leaf.certPath)}\n`);
    const session = smtp.sessions[before];
    assert.equal(session?.starttls, true);
    assert.equal(session?.sni, HOST);
    assert.match(r.stderr, /STARTTLS.*2 certificate\(s\) presented/);
  });

  it('--all: the leaf combinations and the 2 1 1 of the last certificate presented (the intermediate)', async () => {
    const r = await runCliAsync(['tlsa', 'from-host', `${HOST}:${smtp.port}`, '--all', ...lab()]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 8);
    assert.ok(lines.some((l) => l.includes(`IN TLSA 2 1 1 ${spki256(chain.intermediate.certPath)} ;`)));
    assert.ok(
      lines[0]?.startsWith(`_${smtp.port}._tcp.${HOST}. IN TLSA 3 1 1 ${spki256(chain.leaf.certPath)} ;`),
    );
  });

  it('--starttls none: implicit TLS with SNI, --json', async () => {
    const r = await runCliAsync([
      'tlsa',
      'from-host',
      `${HOST}:${implicitPort}`,
      '--starttls',
      'none',
      '--json',
      ...lab(),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.starttls, 'none');
    assert.equal(out.owner, `_${implicitPort}._tcp.${HOST}.`);
    assert.deepEqual(
      out.records.map((x: { rdata: string }) => x.rdata),
      [`3 1 1 ${spki256(chain.leaf.certPath)}`],
    );
    assert.ok(implicitSni.includes(HOST));
  });

  it('speaking STARTTLS to an implicit-TLS port fails with a named error, exit 2', async () => {
    const r = await runCliAsync([
      'tlsa',
      'from-host',
      `${HOST}:${implicitPort}`,
      '--starttls',
      'smtp',
      ...lab(),
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /mx\.lab\.test: no address gave a certificate chain/);
    assert.match(r.stderr, /SMTP_/);
  });

  it('a server without STARTTLS: SMTP_NO_STARTTLS, exit 2', async () => {
    const r = await runCliAsync(['tlsa', 'from-host', `${HOST}:${plainSmtp.port}`, ...lab()]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /SMTP_NO_STARTTLS/);
    assert.equal(r.stdout, '');
  });

  it('refuses loopback addresses without --allow-private, IP literals, bad --starttls; unknown names', async () => {
    const resolver = ['--resolver', `${dns.host}:${dns.port}`, '--timeout', '5'];
    const loop = await runCliAsync(['tlsa', 'from-host', `${HOST}:${smtp.port}`, ...resolver]);
    assert.equal(loop.code, 2);
    assert.match(loop.stderr, /127\.0\.0\.1 \(loopback.*--allow-private/);
    const ip = await runCliAsync(['tlsa', 'from-host', '127.0.0.1:25', ...lab()]);
    assert.equal(ip.code, 2);
    assert.match(ip.stderr, /needs the host name, not an IP address/);
    const bad = await runCliAsync(['tlsa', 'from-host', HOST, '--starttls', 'imap', ...lab()]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--starttls: "smtp" or "none"/);
    const unknown = await runCliAsync(['tlsa', 'from-host', 'nowhere.lab.test', ...lab()]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /nowhere\.lab\.test: no A or AAAA record/);
  });
});
