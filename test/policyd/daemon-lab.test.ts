// The policy daemon against the lab (DNS with secure/insecure/bogus zones, HTTPS policy host), through
// real socketmap connections: one answer per scenario of the decision table (docs/policyd.md), the
// Postfix key forms, RFC 8461 §5 caching with a hand-moved clock (changed id, failed refetch, back-off),
// testing/dane modes, a restart on the same SQLite file, and the metrics endpoint.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../src/policyd/clock.js';
import { type PolicydOptions, type RunningPolicyd, startPolicyd } from '../../src/policyd/daemon.js';
import { type PolicydLab, policyText, SocketmapClient, startPolicydLab } from '../helpers/policyd-lab.js';

const START = Date.parse('2026-03-01T12:00:00Z');
const MINUTE = 60_000;
const secureAnswer = (domain: string) => `OK secure match=mx.${domain}:.${domain} servername=hostname`;

let lab: PolicydLab;
const dirs: string[] = [];
const logs: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = [];

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-policyd-lab-'));
  dirs.push(dir);
  return dir;
}

async function start(
  clock: ManualClock,
  dir: string,
  extra: Partial<PolicydOptions> = {},
): Promise<RunningPolicyd> {
  return startPolicyd({
    listen: { host: '127.0.0.1', port: 0 },
    metrics: { host: '127.0.0.1', port: 0 },
    dataDir: dir,
    resolver: lab.resolver,
    ca: lab.ca,
    allowPrivate: true,
    httpsPort: lab.https.port,
    fetchTimeoutMs: 5000,
    clock,
    log: (level, msg, fields) => logs.push({ level, msg, fields }),
    ...extra,
  });
}

/** Requests the lab HTTPS host got for a domain's policy. */
function fetchesOf(domain: string): number {
  return lab.https.requests.filter((r) => r.host === `mta-sts.${domain}`).length;
}

before(async () => {
  lab = await startPolicydLab();
});

after(async () => {
  await lab.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('answers (decision table)', () => {
  let daemon: RunningPolicyd;
  let client: SocketmapClient;
  before(async () => {
    daemon = await start(new ManualClock(START), dataDir());
    client = await SocketmapClient.connect({ port: daemon.tcp!.port });
  });
  after(async () => {
    client.close();
    await daemon.stop();
  });

  const table: Array<[string, string, string]> = [
    ['enforce.test', secureAnswer('enforce.test'), 'MTA-STS enforce, insecure zone'],
    ['testing.test', 'NOTFOUND ', 'testing is not enforced (RFC 8461 §5)'],
    ['none.test', 'NOTFOUND ', 'mode none'],
    ['nopolicy.test', 'NOTFOUND ', 'no _mta-sts record'],
    ['invalid.test', 'NOTFOUND ', 'policy without mx for enforce: invalid'],
    ['ambiguous.test', 'NOTFOUND ', 'mode given twice: refused'],
    ['broken.test', 'NOTFOUND ', 'policy host answers 500: never TEMP'],
    ['dane.test', 'OK dane-only', 'secure zone, usable TLSA: DANE first'],
    ['insecuretlsa.test', secureAnswer('insecuretlsa.test'), 'TLSA in an unsigned zone: MTA-STS'],
    ['signed.test', secureAnswer('signed.test'), 'signed zone without TLSA: MTA-STS'],
    ['bogus.test', 'OK dane-only', 'bogus MX lookup: never MTA-STS secure'],
    ['bogustlsa.test', 'OK dane-only', 'bogus TLSA lookup: never MTA-STS secure'],
    ['servfailtlsa.test', 'OK dane-only', 'SERVFAIL TLSA lookup: never MTA-STS secure'],
    ['mixed.test', 'OK dane-only', 'one MX with TLSA, one without, enforced policy'],
    ['mixednopolicy.test', 'OK dane', 'one MX with TLSA, one without, no policy'],
    ['unusable.test', secureAnswer('unusable.test'), 'only unusable TLSA, enforced policy'],
    ['unusablenopolicy.test', 'OK dane', 'only unusable TLSA, no policy'],
  ];
  for (const [domain, expected, why] of table) {
    it(`${domain}: ${JSON.stringify(expected)} (${why})`, async () => {
      assert.equal(await client.query(domain), expected);
      // The second answer comes from memory, the same.
      assert.equal(await client.query(domain), expected);
    });
  }

  const keys: Array<[string, string]> = [
    ['.enforce.test', 'NOTFOUND '],
    ['[enforce.test]:25', secureAnswer('enforce.test')],
    ['[enforce.test]', secureAnswer('enforce.test')],
    ['enforce.test:587', secureAnswer('enforce.test')],
    ['ENFORCE.Test', secureAnswer('enforce.test')],
    ['enforce.test.', secureAnswer('enforce.test')],
    ['[127.0.0.1]:25', 'NOTFOUND '],
    ['[ipv6:::1]', 'NOTFOUND '],
    ['not a domain', 'NOTFOUND '],
    ['', 'NOTFOUND '],
    ['localhost', 'NOTFOUND '],
  ];
  for (const [key, expected] of keys) {
    it(`key ${JSON.stringify(key)} -> ${JSON.stringify(expected)}`, async () => {
      assert.equal(await client.query(key), expected);
    });
  }

  it('a cached answer costs no new policy fetch', async () => {
    await client.query('enforce.test');
    const before = fetchesOf('enforce.test');
    for (let i = 0; i < 5; i++)
      assert.equal(await client.query('enforce.test'), secureAnswer('enforce.test'));
    assert.equal(fetchesOf('enforce.test'), before);
  });

  it('any map name is accepted', async () => {
    assert.equal(await client.query('enforce.test', 'mta-sts'), secureAnswer('enforce.test'));
  });

  it('serves Prometheus metrics', async () => {
    const response = await fetch(`http://127.0.0.1:${daemon.metricsAddress!.port}/metrics`);
    assert.equal(response.status, 200);
    const text = await response.text();
    const count = (answer: string) =>
      Number(
        new RegExp(`^mxguard_policyd_queries_total\\{answer="${answer}"\\} (\\d+)$`, 'm').exec(text)?.[1],
      );
    assert.ok(count('secure') > 0, text);
    assert.ok(count('dane-only') > 0);
    assert.ok(count('notfound') > 0);
    assert.match(text, /^mxguard_policyd_cache_lookups_total\{result="hit"\} [1-9]/m);
    assert.match(text, /^mxguard_policyd_cache_lookups_total\{result="miss"\} [1-9]/m);
    assert.match(text, /^mxguard_policyd_policy_fetches_total\{result="ok"\} [1-9]/m);
    assert.match(text, /^mxguard_policyd_policy_fetches_total\{result="MTASTS_FETCH_STATUS"\} 1$/m);
    assert.match(text, /^mxguard_policyd_policy_fetches_total\{result="MTASTS_FETCH_POLICY_INVALID"\} 2$/m);
    assert.match(text, /^mxguard_policyd_query_duration_seconds_count [1-9]/m);
    assert.match(text, /^mxguard_policyd_connections 1$/m);
    assert.equal((await fetch(`http://127.0.0.1:${daemon.metricsAddress!.port}/other`)).status, 404);
  });

  it('logs fetch failures, never queries', () => {
    const failures = logs.filter((l) => l.msg === 'policy fetch failed').map((l) => l.fields?.domain);
    assert.deepEqual(new Set(failures), new Set(['invalid.test', 'ambiguous.test', 'broken.test']));
    assert.equal(logs.filter((l) => /quer/i.test(l.msg)).length, 0);
  });
});

describe('RFC 8461 §5 caching with a hand-moved clock', () => {
  let clock: ManualClock;
  let daemon: RunningPolicyd;
  let client: SocketmapClient;
  before(async () => {
    clock = new ManualClock(START);
    daemon = await start(clock, dataDir());
    client = await SocketmapClient.connect({ port: daemon.tcp!.port });
  });
  after(async () => {
    client.close();
    await daemon.stop();
  });

  it('changed id: answers from the cache while refetching, then the new policy', async () => {
    assert.equal(await client.query('changing.test'), secureAnswer('changing.test'));
    lab.https.setSite('mta-sts.changing.test', {
      kind: 'serve',
      body: policyText('enforce', ['mx2.changing.test']),
    });
    await lab.setTxtId('changing.test', '2');
    // Within the id check interval nothing is looked at.
    clock.advance(30_000);
    assert.equal(await client.query('changing.test'), secureAnswer('changing.test'));
    await daemon.engine.idle();
    assert.equal(daemon.engine.inspect('changing.test')?.policy?.id, '1');
    // After it, the id check runs in the background; the cached answer is given meanwhile.
    clock.advance(31_000);
    assert.equal(await client.query('changing.test'), secureAnswer('changing.test'));
    await daemon.engine.idle();
    assert.equal(
      await client.query('changing.test'),
      'OK secure match=mx2.changing.test servername=hostname',
    );
    assert.equal(daemon.engine.inspect('changing.test')?.policy?.id, '2');
  });

  it('a failed refetch keeps the cached policy, and backs off five minutes per id', async () => {
    assert.equal(await client.query('flaky.test'), secureAnswer('flaky.test'));
    lab.https.setSite('mta-sts.flaky.test', { kind: 'serve', status: 503, body: 'down\n' });
    await lab.setTxtId('flaky.test', '2');
    const fetches = fetchesOf('flaky.test');
    clock.advance(MINUTE + 1);
    await client.query('flaky.test');
    await daemon.engine.idle();
    assert.equal(fetchesOf('flaky.test'), fetches + 1, 'the changed id was fetched');
    assert.equal(await client.query('flaky.test'), secureAnswer('flaky.test'), 'never downgrade');
    const failure = daemon.engine.inspect('flaky.test')?.failure;
    assert.equal(failure?.id, '2');
    assert.equal(failure?.code, 'MTASTS_FETCH_STATUS');
    assert.equal(failure?.retryAt, clock.now() + 5 * MINUTE);
    // Id checks go on, but no new fetch for id 2 before the back-off ends.
    for (let i = 0; i < 3; i++) {
      clock.advance(MINUTE + 1);
      assert.equal(await client.query('flaky.test'), secureAnswer('flaky.test'));
      await daemon.engine.idle();
    }
    assert.equal(fetchesOf('flaky.test'), fetches + 1);
    clock.advance(2 * MINUTE + 1);
    await client.query('flaky.test');
    await daemon.engine.idle();
    assert.equal(fetchesOf('flaky.test'), fetches + 2, 'retried after the back-off');
    // The second failure doubles the back-off.
    assert.equal(daemon.engine.inspect('flaky.test')?.failure?.attempts, 2);
    assert.equal(daemon.engine.inspect('flaky.test')?.failure?.retryAt, clock.now() + 10 * MINUTE);
    // Once the policy host answers again, the new policy replaces the cached one.
    lab.https.setSite('mta-sts.flaky.test', {
      kind: 'serve',
      body: policyText('enforce', ['new.flaky.test']),
    });
    clock.advance(10 * MINUTE + 1);
    await client.query('flaky.test');
    await daemon.engine.idle();
    assert.equal(await client.query('flaky.test'), 'OK secure match=new.flaky.test servername=hostname');
  });
});

describe('modes', () => {
  it('--testing-mode enforce answers testing policies like enforce', async () => {
    const daemon = await start(new ManualClock(START), dataDir(), { testingMode: 'enforce' });
    const client = await SocketmapClient.connect({ port: daemon.tcp!.port });
    assert.equal(await client.query('testing.test'), 'OK secure match=mx.testing.test servername=hostname');
    client.close();
    await daemon.stop();
  });

  it('--dane-mode dane answers OK dane where every MX host has usable TLSA', async () => {
    const daemon = await start(new ManualClock(START), dataDir(), { daneMode: 'dane' });
    const client = await SocketmapClient.connect({ port: daemon.tcp!.port });
    assert.equal(await client.query('dane.test'), 'OK dane');
    // Mixed hosts with an enforced policy stay dane-only whatever the mode.
    assert.equal(await client.query('mixed.test'), 'OK dane-only');
    client.close();
    await daemon.stop();
  });
});

describe('restart', () => {
  it('keeps the SQLite cache: a restarted daemon answers without fetching again', async () => {
    const dir = dataDir();
    const clock = new ManualClock(START);
    let daemon = await start(clock, dir);
    let client = await SocketmapClient.connect({ port: daemon.tcp!.port });
    assert.equal(await client.query('enforce.test'), secureAnswer('enforce.test'));
    await daemon.engine.idle();
    client.close();
    await daemon.stop();

    const fetches = fetchesOf('enforce.test');
    lab.https.setSite('mta-sts.enforce.test', { kind: 'serve', status: 500, body: 'gone\n' });
    try {
      daemon = await start(clock, dir);
      client = await SocketmapClient.connect({ port: daemon.tcp!.port });
      assert.equal(await client.query('enforce.test'), secureAnswer('enforce.test'));
      assert.equal(fetchesOf('enforce.test'), fetches);
      client.close();
      await daemon.stop();
    } finally {
      lab.https.setSite('mta-sts.enforce.test', {
        kind: 'serve',
        body: policyText('enforce', ['mx.enforce.test', '*.enforce.test']),
      });
    }
  });
});
