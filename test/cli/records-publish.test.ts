// `mxguard records DOMAIN --dns-server ... --tsig-key ...` (the built CLI) publishing by DNS UPDATE to knotd
// (test/lab/knot-update.ts: signed zone, update ACL for the key, unbound validating): the TXT records land
// (read back from knotd and with AD through unbound), what changed is printed (text and --json), a second run
// changes nothing, the apex keeps its other TXT records; errors are named with exit 1 (server said no) or 2.
//
// Needs root (port 53 on 127.0.57.x) and the Debian packages knot, unbound, bind9-dnsutils.
// Addresses: 127.0.57.1 knotd, .2 unbound, .9 nothing; no other test file uses 127.0.57.x.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DnsClient } from '../../src/dns/client.js';
import { joinTxt } from '../../src/dns/resolver.js';
import { runCliAsync } from '../helpers/cli.js';
import { type KnotUpdateLab, startKnotUpdateLab } from '../lab/knot-update.js';

let lab: KnotUpdateLab;
const server = () => `${lab.authoritative.host}:${lab.authoritative.port}`;

before(async () => {
  lab = await startKnotUpdateLab({
    zones: [
      { name: 'p1.test', records: ['@ TXT "google-site-verification=abc"', '@ TXT "v=spf1 -all"'] },
      { name: 'p2.test', records: [] },
    ],
    keys: [
      { name: 'upd', algorithm: 'hmac-sha256', zones: ['p1.test'] },
      { name: 'p2only', algorithm: 'hmac-sha256', zones: ['p2.test'] },
    ],
    authoritativeAddress: '127.0.57.1',
    resolverAddress: '127.0.57.2',
  });
});

after(async () => {
  await lab?.stop();
});

const records = (domain: string, extra: string[]) =>
  runCliAsync(['records', domain, '--mx', `mail.${domain}`, '--id', '20261207', ...extra]);

describe('records --dns-server', () => {
  it('publishes _mta-sts, _smtp._tls, SPF and DMARC; prints what changed; exit 0', async () => {
    const r = await records('p1.test', [
      '--spf',
      'mx',
      '--dmarc',
      'reject',
      '--policy-host-target',
      '192.0.2.80',
      '--dns-server',
      server(),
      '--tsig-key',
      lab.keyFiles.upd!,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^DNS UPDATE at 127\.0\.57\.1:53, zone p1\.test:$/m);
    assert.match(r.stdout, /changed +_mta-sts\.p1\.test TXT "v=STSv1; id=20261207" \(was: none\)/);
    assert.match(
      r.stdout,
      /changed +p1\.test TXT "google-site-verification=abc" "v=spf1 mx" \(was: .*"v=spf1 -all"/,
    );
    assert.match(r.stdout, /not published \(do it yourself\): mta-sts\.p1\.test A 192\.0\.2\.80/);
    assert.deepEqual(await lab.authoritativeRRset('_mta-sts.p1.test', 'TXT'), ['"v=STSv1; id=20261207"']);
    assert.deepEqual(await lab.authoritativeRRset('p1.test', 'TXT'), [
      '"google-site-verification=abc"',
      '"v=spf1 mx"',
    ]);
    assert.match((await lab.authoritativeRRset('_dmarc.p1.test', 'TXT'))[0] ?? '', /^"v=DMARC1; p=reject/);
    const rpt = await new DnsClient({ servers: [lab.resolver] }).query('_smtp._tls.p1.test', 'TXT');
    assert.equal(rpt.secure, true);
    assert.deepEqual(
      rpt.answers.map((a) => (a.type === 'TXT' ? joinTxt(a.data) : '')),
      ['v=TLSRPTv1; rua=mailto:tlsrpt@p1.test'],
    );
  });

  it('--json: the second run with the same input changes nothing', async () => {
    const args = [
      '--spf',
      'mx',
      '--dmarc',
      'reject',
      '--dns-server',
      server(),
      '--tsig-key',
      lab.keyFiles.upd!,
    ];
    const r = await records('p1.test', [...args, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.zone, 'p1.test');
    assert.deepEqual(out.changed, []);
    assert.deepEqual(out.unchanged.map((u: { name: string }) => u.name).sort(), [
      '_dmarc.p1.test',
      '_mta-sts.p1.test',
      '_smtp._tls.p1.test',
      'p1.test',
    ]);
  });

  it('a new --id is one changed record in --json, with before and after', async () => {
    const r = await runCliAsync([
      'records',
      'p1.test',
      '--mx',
      'mail.p1.test',
      '--id',
      '20261208',
      '--dns-server',
      server(),
      '--tsig-key',
      lab.keyFiles.upd!,
      '--zone',
      'p1.test',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).changed, [
      {
        name: '_mta-sts.p1.test',
        type: 'TXT',
        before: ['v=STSv1; id=20261207'],
        after: ['v=STSv1; id=20261208'],
      },
    ]);
  });

  it('a key not allowed for the zone: exit 1, TSIG_BADKEY named, nothing changed', async () => {
    const r = await records('p1.test', ['--dns-server', server(), '--tsig-key', lab.keyFiles.p2only!]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /TSIG_BADKEY/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.deepEqual(await lab.authoritativeRRset('_mta-sts.p1.test', 'TXT'), ['"v=STSv1; id=20261208"']);
  });

  it('server down: exit 2, UPDATE_UNREACHABLE', async () => {
    const r = await records('p1.test', ['--dns-server', '127.0.57.9', '--tsig-key', lab.keyFiles.upd!]);
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.stderr, /UPDATE_UNREACHABLE/);
  });

  it('usage errors: exit 2 naming the option', async () => {
    const noKey = await records('p1.test', ['--dns-server', server()]);
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /--dns-server and --tsig-key go together/);
    const badServer = await records('p1.test', [
      '--dns-server',
      'ns.example',
      '--tsig-key',
      lab.keyFiles.upd!,
    ]);
    assert.equal(badServer.code, 2);
    assert.match(badServer.stderr, /--dns-server: /);
    const format = await records('p1.test', [
      '--dns-server',
      server(),
      '--tsig-key',
      lab.keyFiles.upd!,
      '--format',
      'powershell',
    ]);
    assert.equal(format.code, 2);
    assert.match(format.stderr, /--format: nothing is printed with --dns-server/);
    const junk = join(lab.dir, 'junk.key');
    writeFileSync(junk, 'not a key\n');
    const badKey = await records('p1.test', ['--dns-server', server(), '--tsig-key', junk]);
    assert.equal(badKey.code, 2);
    assert.match(badKey.stderr, /--tsig-key: .*junk\.key: no TSIG key found/);
  });
});
