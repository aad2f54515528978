// One monitored check (src/monitor/monitor.ts) over the real SQLite store with the audit handed in: the run
// stored with the monitor's own findings (a hosted domain's stale _mta-sts id, TLS-RPT failure rate and new
// result types from stored reports), alerts and their deliveries written with it, a check that could not
// run changing nothing, an unknown domain refused, and the live check storing nothing.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { DomainCheck } from '../../src/check/run.js';
import type { CheckEnvironment, Finding } from '../../src/check/types.js';
import type { Resolver } from '../../src/dns/resolver.js';
import { tlsRptFindings } from '../../src/monitor/findings.js';
import { Monitor } from '../../src/monitor/monitor.js';
import { DEFAULT_MONITOR_SETTINGS, type MonitorSettings } from '../../src/monitor/settings.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { type Store, StoreError } from '../../src/store/types.js';
import type { TlsReport } from '../../src/tlsrpt/report.js';

const NOW = new Date('2026-12-07T12:00:00.000Z');
const SETTINGS: MonitorSettings = {
  ...DEFAULT_MONITOR_SETTINGS,
  webhooks: [{ url: 'https://hooks.example.test/a' }, { url: 'https://hooks.example.test/b' }],
  tlsrptMinSessions: 100,
  tlsrptFailureRate: 0.01,
};
const MISMATCH: Finding = {
  section: 'dane',
  status: 'fail',
  code: 'DANE_TLSA_MISMATCH',
  message: '192.0.2.1: no usable TLSA record matches',
  host: 'mx.a.test',
  fix: '_25._tcp.mx.a.test. IN TLSA 3 1 1 00',
};

/** A resolver whose only use here is the validating check (the audit itself is handed in). */
function resolver(outcome: 'ok' | 'timeout' = 'ok'): Resolver {
  return {
    checkValidating: async () => ({
      validating: outcome === 'ok',
      result: { outcome, secure: outcome === 'ok', answers: [], ede: [] },
    }),
  } as unknown as Resolver;
}

let dir: string;
let store: Store;
/** What the next audit returns, and the environments it was given. */
let next: (domain: string) => DomainCheck;
let envs: CheckEnvironment[];

function monitor(options: { outcome?: 'ok' | 'timeout'; settings?: MonitorSettings } = {}): Monitor {
  return new Monitor({
    store,
    settings: options.settings ?? SETTINGS,
    network: { resolver: resolver(options.outcome), ca: [], allowPrivate: false, timeoutMs: 1000 },
    now: () => NOW,
    check: async (domain, env) => {
      envs.push(env);
      return next(domain);
    },
  });
}

const result = (findings: Finding[], mtaSts?: DomainCheck['mtaSts']): DomainCheck => ({
  domain: 'a.test',
  status: findings.some((f) => f.status === 'fail') ? 'fail' : 'pass',
  findings,
  ...(mtaSts ? { mtaSts } : {}),
});

function report(id: string, start: string, successful: number, failures: Record<string, number>): TlsReport {
  const failed = Object.values(failures).reduce((a, b) => a + b, 0);
  return {
    organization: 'Sender',
    reportId: id,
    start,
    end: start.replace('T00:00:00Z', 'T23:59:59Z'),
    policies: [
      {
        type: 'sts',
        domain: 'a.test',
        policyStrings: [],
        mxHosts: [],
        successful,
        failed,
        failures: Object.entries(failures).map(([resultType, count]) => ({ resultType, count })),
      },
    ],
  };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mxguard-monitor-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

beforeEach(async () => {
  await store?.close();
  store = await openSqliteStore(mkdtempSync(join(dir, 'store-')));
  await store.addDomain(
    'a.test',
    { mode: 'testing', mx: ['mx.a.test'], maxAge: 86400, rua: ['mailto:r@a.test'] },
    NOW,
  );
  next = () => result([]);
  envs = [];
});
after(async () => store?.close());

describe('Monitor.check', () => {
  it('stores the run and opens an alert with one delivery per target; the next check resolves it', async () => {
    next = () => result([MISMATCH]);
    const run = await monitor().check('A.test', 'schedule');
    assert.equal(run.status, 'fail');
    assert.deepEqual(await store.getCheckRun(run.id), run);
    const [alert] = await store.openAlerts('a.test');
    assert.equal(alert?.code, 'DANE_TLSA_MISMATCH');
    assert.equal(alert?.subject, 'mx.a.test/192.0.2.1');
    assert.equal(alert?.fix, MISMATCH.fix);
    const deliveries = (await store.listDeliveries({ alertId: alert!.id })).items;
    assert.deepEqual(deliveries.map((d) => d.target).sort(), [
      'https://hooks.example.test/a',
      'https://hooks.example.test/b',
    ]);
    assert.equal(deliveries[0]!.event.event, 'alert.opened');
    assert.equal(deliveries[0]!.event.host, 'mx.a.test/192.0.2.1');

    next = () => result([]);
    await monitor().check('a.test', 'schedule');
    assert.deepEqual(await store.openAlerts('a.test'), []);
    const all = (await store.listDeliveries({ alertId: alert!.id })).items;
    const resolved = all.filter((d) => d.event.event === 'alert.resolved');
    assert.equal(resolved.length, 2);
    assert.equal(resolved[0]!.event.openedAt, deliveries[0]!.event.openedAt);
    assert.equal(resolved[0]!.event.resolvedAt, NOW.toISOString());
  });

  it('a check that could not run is stored with its reason and changes no alert', async () => {
    next = () => result([MISMATCH]);
    await monitor().check('a.test', 'schedule');
    const run = await monitor({ outcome: 'timeout' }).check('a.test', 'schedule');
    assert.equal(run.status, 'error');
    assert.match(run.error ?? '', /resolver unreachable/);
    assert.equal((await store.openAlerts('a.test')).length, 1);
    next = () => {
      throw new Error('boom');
    };
    const crashed = await monitor().check('a.test', 'manual');
    assert.equal(crashed.status, 'error');
    assert.match(crashed.error ?? '', /internal error: boom/);
    assert.equal((await store.openAlerts('a.test')).length, 1);
  });

  it('refuses a domain that is not watched', async () => {
    await assert.rejects(monitor().check('other.test', 'manual'), (err: unknown) => {
      return err instanceof StoreError && err.code === 'STORE_DOMAIN_UNKNOWN';
    });
  });

  it('hands the check serve-side settings: expiry window, previous policy first seen under the id', async () => {
    const m = monitor({ settings: { ...SETTINGS, expiryDays: 30 } });
    next = () => result([], { id: 'one', body: 'version: STSv1\nmode: testing\nmx: a\nmax_age: 86400\n' });
    await m.check('a.test', 'schedule');
    assert.equal(envs[0]!.expiryWarningDays, 30);
    assert.equal(envs[0]!.previousPolicy, undefined);
    next = () => result([], { id: 'one', body: 'version: STSv1\nmode: testing\nmx: b\nmax_age: 86400\n' });
    await m.check('a.test', 'schedule');
    await m.check('a.test', 'schedule');
    // Still the body first seen under "one", not the one of the check before.
    assert.match(envs[2]!.previousPolicy?.body ?? '', /mx: a/);
    next = () => result([], { id: 'two', body: 'version: STSv1\nmode: testing\nmx: b\nmax_age: 86400\n' });
    await m.check('a.test', 'schedule');
    await m.check('a.test', 'schedule');
    assert.deepEqual(envs[4]!.previousPolicy, {
      id: 'two',
      body: 'version: STSv1\nmode: testing\nmx: b\nmax_age: 86400\n',
    });
  });

  it('a hosted domain whose published id is not the current one: MTASTS_ID_NOT_CURRENT with the record to publish', async () => {
    const domain = (await store.getDomain('a.test'))!;
    next = () => result([], { id: '20200101000000' });
    const run = await monitor().check('a.test', 'schedule');
    const stale = run.findings.find((f) => f.code === 'MTASTS_ID_NOT_CURRENT');
    assert.equal(stale?.section, 'monitor');
    assert.equal(stale?.fix, `_mta-sts.a.test. IN TXT "v=STSv1; id=${domain.policyId}"`);
    next = () => result([], { id: domain.policyId });
    assert.equal((await monitor().check('a.test', 'schedule')).findings.length, 0);
    // Watch-only: the id is someone else's business.
    await store.updateDomain('a.test', { watchOnly: true }, NOW);
    next = () => result([], { id: '20200101000000' });
    assert.equal((await monitor().check('a.test', 'schedule')).findings.length, 0);
  });

  it('TLS-RPT: the failure rate of the last day of reports, and a result type never reported before', async () => {
    await store.saveReport(
      {
        report: report('old', '2026-11-01T00:00:00Z', 1000, { 'starttls-not-supported': 5 }),
        source: 'https',
        dkim: 'none',
        warnings: [],
      },
      NOW,
    );
    await store.saveReport(
      {
        report: report('new', '2026-12-06T00:00:00Z', 900, {
          'starttls-not-supported': 50,
          'certificate-host-mismatch': 50,
        }),
        source: 'https',
        dkim: 'none',
        warnings: [],
      },
      NOW,
    );
    const run = await monitor().check('a.test', 'schedule');
    const own = run.findings.filter((f) => f.section === 'monitor');
    assert.deepEqual(
      own.map((f) => [f.code, f.host ?? '']),
      [
        ['TLSRPT_FAILURE_RATE', ''],
        ['TLSRPT_NEW_RESULT_TYPE', 'certificate-host-mismatch'],
      ],
    );
    assert.match(own[0]!.message, /100 of 1000 sessions \(10 %\)/);
  });

  it('the live check stores nothing', async () => {
    next = () => result([MISMATCH]);
    const live = await monitor().liveCheck('Elsewhere.Test');
    assert.equal(live.status, 'fail');
    assert.equal((await store.listCheckRuns('a.test')).total, 0);
    assert.deepEqual(await store.openAlerts(), []);
  });
});

describe('tlsRptFindings', () => {
  const settings = { tlsrptFailureRate: 0.01, tlsrptMinSessions: 100 };
  const day = (successful: number, failed: number) => ({ day: '2026-12-06', successful, failed });
  const rows: Array<[string, Parameters<typeof tlsRptFindings>[0], string[]]> = [
    ['under the minimum of sessions: no rate', { recent: [day(10, 89)], recentTypes: [], allTypes: [] }, []],
    ['at the threshold: not over it', { recent: [day(99, 1)], recentTypes: [], allTypes: [] }, []],
    [
      'over it, summed over the days',
      { recent: [day(60, 1), day(39, 1)], recentTypes: [], allTypes: [] },
      ['TLSRPT_FAILURE_RATE'],
    ],
    ['no sessions at all', { recent: [], recentTypes: [], allTypes: [] }, []],
    [
      'a type seen before the window is not new; the empty key never is',
      {
        recent: [],
        recentTypes: [
          { key: 'validation-failure', count: 2 },
          { key: '', count: 3 },
          { key: 'sts-policy-fetch-error', count: 1 },
        ],
        allTypes: [
          { key: 'validation-failure', count: 5 },
          { key: '', count: 3 },
          { key: 'sts-policy-fetch-error', count: 1 },
        ],
      },
      ['TLSRPT_NEW_RESULT_TYPE sts-policy-fetch-error'],
    ],
  ];
  for (const [name, input, want] of rows) {
    it(name, () => {
      assert.deepEqual(
        tlsRptFindings(input, settings).map((f) => (f.host ? `${f.code} ${f.host}` : f.code)),
        want,
      );
    });
  }
});
