// The senders section of `mxguard check` predicts what `mxguard policyd` answers: every scenario of the
// policy daemon's lab (secure, insecure, bogus and SERVFAIL zones, usable and unusable TLSA, policies in every
// mode, a policy that covers no MX host, an MX host that is a CNAME whose TLSA RRset sits at the target) goes
// through the built `check --json` and through real Postfix (`postmap -q DOMAIN socketmap:inet:...`) against the
// built `policyd`, started fresh on the same lab. The predicted socketmap answer must be the daemon's.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Finding } from '../../src/check/types.js';
import { BIN, runCliAsync } from '../helpers/cli.js';
import { type PolicydLab, SCENARIOS, startPolicydLab } from '../helpers/policyd-lab.js';
import { type Postmap, postmapClient } from '../helpers/postmap.js';
import { Daemon, requireCommand } from '../lab/dnssec.js';
import { freePort } from '../lab/redis.js';

const DOMAINS = Object.keys(SCENARIOS);

let lab: PolicydLab;
let tmp: string;
let daemon: Daemon;
let postmap: Postmap;
const reports = new Map<string, Finding[]>();

before(async () => {
  requireCommand('postmap', 'postfix');
  tmp = mkdtempSync(join(tmpdir(), 'mxguard-senders-'));
  lab = await startPolicydLab();
  const port = await freePort();
  daemon = new Daemon('mxguard policyd', process.execPath, [
    BIN,
    'policyd',
    '--listen',
    `127.0.0.1:${port}`,
    '--data-dir',
    join(tmp, 'policyd'),
    ...lab.args,
  ]);
  postmap = postmapClient(tmp, { host: '127.0.0.1', port });
  await daemon.waitFor(async () => {
    try {
      await postmap.query('ready.invalid');
      return true;
    } catch {
      return false;
    }
  });
  // One check run for every domain (NDJSON, one line per domain); SMTP probes go to a closed port.
  const closed = await freePort();
  const run = await runCliAsync([
    'check',
    ...DOMAINS,
    '--json',
    '--smtp-port',
    String(closed),
    '--timeout',
    '5',
    ...lab.args,
  ]);
  for (const line of run.stdout.split('\n').filter((l) => l.trim() !== '')) {
    const report = JSON.parse(line) as { domain: string; findings: Finding[] };
    reports.set(report.domain, report.findings);
  }
  assert.deepEqual(
    [...reports.keys()].sort(),
    [...DOMAINS].sort(),
    `check printed:\n${run.stdout}${run.stderr}`,
  );
});

after(async () => {
  await daemon?.stop();
  await lab?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function predicted(domain: string): string {
  const findings = reports.get(domain)!.filter((f) => f.section === 'senders' && f.sender === 'dane-mta-sts');
  assert.ok(findings.length > 0, `${domain}: no dane-mta-sts finding`);
  const answers = new Set(findings.map((f) => f.answer));
  assert.equal(answers.size, 1, `${domain}: the dane-mta-sts findings disagree: ${[...answers].join(' | ')}`);
  return [...answers][0]!;
}

describe('check predicts policyd', () => {
  for (const domain of DOMAINS) {
    it(`${domain}: check's predicted answer is the one postmap gets from policyd`, async () => {
      const answer = await postmap.query(domain);
      assert.equal(predicted(domain), answer, `${domain}: policyd log:\n${daemon.log.slice(-2000)}`);
    });
  }

  it('a CNAMEd MX host with TLSA at the target is DANE (RFC 7672 §2.2.2), for check and policyd alike', async () => {
    assert.equal(await postmap.query('cname.test'), 'OK dane-only');
    const dane = reports.get('cname.test')!.find((f) => f.sender === 'dane-mta-sts')!;
    assert.equal(dane.code, 'SENDERS_DANE');
  });

  it('an enforced policy that covers no MX host: every sender that enforces it refuses', async () => {
    const findings = reports.get('nomatch.test')!.filter((f) => f.section === 'senders');
    const bySender = Object.fromEntries(findings.map((f) => [f.sender, [f.code, f.status]]));
    assert.deepEqual(bySender, {
      'dane-mta-sts': ['SENDERS_REFUSE', 'fail'],
      'mta-sts': ['SENDERS_REFUSE', 'fail'],
      opportunistic: ['SENDERS_TLS', 'pass'],
    });
  });

  it('a bogus MX lookup: DANE-and-MTA-STS senders defer, and check says why', () => {
    const dane = reports.get('bogus.test')!.find((f) => f.sender === 'dane-mta-sts')!;
    assert.equal(dane.code, 'SENDERS_NO_DELIVERY');
    assert.match(dane.message, /MX lookup failed \(DNSSEC validation failed \(bogus\)\): mail is deferred/);
  });

  it('policyd query says when its answer makes Postfix defer, from the same view', async () => {
    const query = (domain: string, json: boolean) =>
      runCliAsync([
        'policyd',
        'query',
        domain,
        ...(json ? ['--json'] : []),
        '--data-dir',
        join(tmp, 'policyd'),
        ...lab.args,
      ]);
    const nomatch = await query('nomatch.test', true);
    assert.equal(nomatch.code, 0, nomatch.stderr);
    const explained = JSON.parse(nomatch.stdout) as {
      answer: { reply: string };
      postfix: { stops: boolean; hosts: Array<{ host: string; delivery: string; why: string }> };
    };
    assert.equal(explained.answer.reply, 'OK secure match=other.nomatch.test servername=hostname');
    assert.equal(explained.postfix.stops, true);
    assert.deepEqual(
      explained.postfix.hosts.map((h) => [h.host, h.delivery]),
      [['mx.nomatch.test', 'refuse']],
    );
    assert.match(explained.postfix.hosts[0]!.why, /no mx pattern matching mx\.nomatch\.test/);
    const text = await query('nomatch.test', false);
    assert.match(text.stdout, /^ {2}postfix: WILL NOT DELIVER/m);
    // A domain Postfix delivers to says so, and names how.
    const enforce = JSON.parse((await query('enforce.test', true)).stdout) as typeof explained;
    assert.equal(enforce.postfix.stops, false);
    assert.deepEqual(
      enforce.postfix.hosts.map((h) => [h.host, h.delivery]),
      [['mx.enforce.test', 'mta-sts']],
    );
  });
});
