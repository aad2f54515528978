// Report retention (src/server/retention.ts): reports whose date range starts more than
// `retention.reportDays` days ago, and rejected input received that long ago, are deleted in small
// batches with a pause between them, at start and then every hour, by one process of `serve`;
// monitoring's check runs older than monitor.historyDays (default 90) go the same way.
// The clock is injected; the store is a real SQLite store; the last test runs the built `serve`.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { ConfigError, loadServeSettings } from '../../src/server/config.js';
import { applyRetention, startRetention } from '../../src/server/retention.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import type { TlsReport } from '../../src/tlsrpt/report.js';
import { eventually } from '../fixtures/serve/helpers.js';
import { type ServeProcess, spawnServe } from '../helpers/serve-process.js';

const DAY = 86_400_000;
const NOW = new Date('2026-05-10T12:00:00Z');
const daysAgo = (days: number, extraMs = 0) => new Date(NOW.getTime() - days * DAY - extraMs);

let root: string;
let counter = 0;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'mxguard-retention-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

function tlsReport(reportId: string, start: Date): TlsReport {
  return {
    organization: 'Sender',
    reportId,
    start: start.toISOString(),
    end: new Date(start.getTime() + DAY - 1000).toISOString(),
    policies: [
      {
        type: 'sts',
        domain: 'example.com',
        policyStrings: [],
        mxHosts: [],
        successful: 5,
        failed: 1,
        failures: [{ resultType: 'certificate-expired', count: 1 }],
      },
    ],
  };
}

async function save(store: Store, reportId: string, start: Date): Promise<number> {
  return (
    await store.saveReport(
      { report: tlsReport(reportId, start), source: 'https', dkim: 'none', warnings: [] },
      NOW,
    )
  ).id;
}

async function reportIds(store: Store): Promise<string[]> {
  return (await store.listReports({ limit: 1000 })).items.map((r) => r.reportId).sort();
}

async function withStore(work: (store: Store, dir: string) => Promise<void>): Promise<void> {
  const dir = join(root, `data-${++counter}`);
  const store = await openSqliteStore(dir);
  try {
    await work(store, dir);
  } finally {
    await store.close();
  }
}

describe('applyRetention', () => {
  it('deletes only reports starting before the cutoff, in batches, and never a new one', async () => {
    await withStore(async (store) => {
      for (let i = 0; i < 7; i++) await save(store, `old-${i}`, daysAgo(400 + i, 1));
      await save(store, 'at-cutoff', daysAgo(400));
      await save(store, 'recent', daysAgo(1));
      await save(store, 'future', new Date(NOW.getTime() + DAY));
      let pauses = 0;
      const run = await applyRetention(store, {
        reportDays: 400,
        now: NOW,
        batchSize: 3,
        pause: async () => {
          pauses++;
          // a report arriving between two batches is left alone, even an old one is only taken in a later batch
          await save(store, `arrived-${pauses}`, daysAgo(0));
        },
      });
      assert.deepEqual(run, { reports: 7, dmarcReports: 0, rejected: 0, checkRuns: 0, batches: 3 });
      assert.equal(pauses, 2, 'a pause between batches, none after the last');
      assert.deepEqual(await reportIds(store), ['arrived-1', 'arrived-2', 'at-cutoff', 'future', 'recent']);
      // the charts lose the deleted reports' sessions
      assert.deepEqual(await store.dailyCounts('example.com', '2024-01-01', '2025-04-05'), [
        { day: '2025-04-05', successful: 5, failed: 1 }, // at-cutoff alone
      ]);
    });
  });

  it('rejected input received before the cutoff goes too', async () => {
    await withStore(async (store) => {
      for (let i = 0; i < 4; i++)
        await store.saveRejected({ source: 'smtp', reason: `r${i}`, size: 1 }, daysAgo(500 + i));
      await store.saveRejected({ source: 'smtp', reason: 'new', size: 1 }, daysAgo(2));
      const run = await applyRetention(store, {
        reportDays: 400,
        now: NOW,
        batchSize: 3,
        pause: async () => {},
      });
      assert.deepEqual(run, { reports: 0, dmarcReports: 0, rejected: 4, checkRuns: 0, batches: 2 });
      assert.deepEqual(
        (await store.listRejected()).items.map((r) => r.reason),
        ['new'],
      );
    });
  });

  it('reportDays 0 keeps everything', async () => {
    await withStore(async (store) => {
      await save(store, 'ancient', new Date('2001-01-01T00:00:00Z'));
      assert.deepEqual(await applyRetention(store, { reportDays: 0, checkRunDays: 0, now: NOW }), {
        reports: 0,
        dmarcReports: 0,
        rejected: 0,
        checkRuns: 0,
        batches: 0,
      });
      assert.deepEqual(await reportIds(store), ['ancient']);
    });
  });
});

describe('applyRetention of check runs', () => {
  /** One check of example.com started `when`, opening an alert `opens` when given. */
  async function check(store: Store, when: Date, opens?: string): Promise<number> {
    const alert = {
      domain: 'example.com',
      code: opens ?? '',
      subject: '',
      severity: 'fail' as const,
      message: 'm',
    };
    const run = {
      domain: 'example.com',
      at: when.toISOString(),
      durationMs: 1,
      status: 'pass' as const,
      findings: [],
      trigger: 'schedule' as const,
    };
    const open = opens === undefined ? [] : [{ alert, deliveries: [] }];
    return (await store.recordCheck({ run, open, resolve: [] }, when)).runId;
  }
  const runIds = (store: Store) =>
    store.listCheckRuns('example.com').then((p) => p.items.map((r) => r.id).sort());
  const settings = {
    mode: 'testing' as const,
    mx: ['mx.example.com'],
    maxAge: 86400,
    rua: ['mailto:r@example.com'],
  };

  it('deletes runs older than checkRunDays (default 90) in batches, keeping a run an open alert points to', async () => {
    await withStore(async (store) => {
      await store.addDomain('example.com', settings, daysAgo(200));
      const held = await check(store, daysAgo(150), 'starttls-failed');
      for (let i = 0; i < 5; i++) await check(store, daysAgo(91 + i));
      const recent = await check(store, daysAgo(89));
      const run = await applyRetention(store, {
        reportDays: 400,
        now: NOW,
        batchSize: 2,
        pause: async () => {},
      });
      assert.deepEqual(run, { reports: 0, dmarcReports: 0, rejected: 0, checkRuns: 5, batches: 3 });
      assert.deepEqual(await runIds(store), [held, recent]);
      const shorter = await applyRetention(store, { reportDays: 0, checkRunDays: 30, now: NOW });
      assert.equal(shorter.checkRuns, 1, 'reportDays 0 keeps reports, not check runs');
      assert.deepEqual(await runIds(store), [held]);
    });
  });

  it('checkRunDays 0 keeps every run', async () => {
    await withStore(async (store) => {
      await store.addDomain('example.com', settings, daysAgo(2000));
      const ancient = await check(store, daysAgo(1000));
      assert.equal(
        (await applyRetention(store, { reportDays: 400, checkRunDays: 0, now: NOW })).checkRuns,
        0,
      );
      assert.deepEqual(await runIds(store), [ancient]);
    });
  });
});

describe('startRetention', () => {
  it('runs at start and again on its interval, with the context clock; stop ends it', async () => {
    await withStore(async (store) => {
      await save(store, 'old-1', daysAgo(40));
      await save(store, 'new-1', daysAgo(1));
      const logged: string[] = [];
      const logger = pino({ level: 'info' }, { write: (line: string) => logged.push(line) });
      const retention = startRetention({ store, logger, now: () => NOW }, { reportDays: 30, intervalMs: 50 });
      try {
        await eventually(
          async () => ((await reportIds(store)).includes('old-1') ? undefined : true),
          'first run',
        );
        await save(store, 'old-2', daysAgo(35));
        await eventually(
          async () => ((await reportIds(store)).includes('old-2') ? undefined : true),
          'a later run',
        );
        assert.deepEqual(await reportIds(store), ['new-1']);
      } finally {
        await retention.stop();
      }
      const lines = logged.map((l) => JSON.parse(l) as { msg: string; reports?: number });
      assert.ok(
        lines.some((l) => l.msg === 'retention: deleted old reports' && l.reports === 1),
        logged.join(''),
      );
    });
  });
});

describe('startRetention of check runs', () => {
  it('runs for check runs even when reports are kept forever, and logs what it deleted', async () => {
    await withStore(async (store) => {
      const settings = {
        mode: 'testing' as const,
        mx: ['mx.example.com'],
        maxAge: 86400,
        rua: ['mailto:r@example.com'],
      };
      await store.addDomain('example.com', settings, daysAgo(100));
      const run = {
        domain: 'example.com',
        durationMs: 1,
        status: 'pass' as const,
        findings: [],
        trigger: 'schedule' as const,
      };
      await store.recordCheck({ run: { ...run, at: daysAgo(40).toISOString() }, open: [], resolve: [] }, NOW);
      const logged: string[] = [];
      const logger = pino({ level: 'info' }, { write: (line: string) => logged.push(line) });
      const retention = startRetention(
        { store, logger, now: () => NOW },
        { reportDays: 0, checkRunDays: 30 },
      );
      try {
        await eventually(
          async () => ((await store.listCheckRuns('example.com')).total === 0 ? true : undefined),
          'run',
        );
      } finally {
        await retention.stop();
      }
      const lines = logged.map((l) => JSON.parse(l) as { msg: string; checkRuns?: number });
      assert.ok(
        lines.some((l) => l.msg === 'retention: deleted old check runs' && l.checkRuns === 1),
        logged.join(''),
      );
    });
  });
});

describe('retention settings', () => {
  const load = (env: NodeJS.ProcessEnv = {}, config?: unknown) => {
    let file: string | undefined;
    if (config !== undefined) {
      file = join(root, `config-${++counter}.json`);
      writeFileSync(file, JSON.stringify(config));
    }
    return loadServeSettings({ cli: { config: file }, env, cwd: root });
  };
  const problems = (env: NodeJS.ProcessEnv, config?: unknown) => {
    try {
      load(env, config);
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.problems.join('\n');
    }
    assert.fail('expected a ConfigError');
  };

  it('default 400 days; the config file and MXGUARD_REPORT_RETENTION_DAYS set it; 0 keeps forever', () => {
    assert.deepEqual(load().retention, { reportDays: 400 });
    assert.deepEqual(load({}, { retention: { reportDays: 90 } }).retention, { reportDays: 90 });
    assert.deepEqual(
      load({ MXGUARD_REPORT_RETENTION_DAYS: '30' }, { retention: { reportDays: 90 } }).retention,
      { reportDays: 30 },
    );
    assert.deepEqual(load({ MXGUARD_REPORT_RETENTION_DAYS: '0' }).retention, { reportDays: 0 });
  });

  it('refuses what is not a whole number of days, naming the source', () => {
    assert.match(problems({ MXGUARD_REPORT_RETENTION_DAYS: 'forever' }), /MXGUARD_REPORT_RETENTION_DAYS: /);
    assert.match(problems({ MXGUARD_REPORT_RETENTION_DAYS: '-1' }), /MXGUARD_REPORT_RETENTION_DAYS: /);
    assert.match(problems({}, { retention: { reportDays: 1.5 } }), /retention\.reportDays: /);
    assert.match(problems({}, { retention: { days: 5 } }), /retention: unknown key "days"/);
  });
});

describe('serve applies retention once, in the primary', () => {
  let serve: ServeProcess | undefined;
  after(() => {
    if (serve?.child.exitCode === null) serve.child.kill('SIGKILL');
  });

  it('two workers, one retention run at start: old reports gone, new ones kept', async () => {
    const dataDir = join(root, `serve-${++counter}`);
    const store = await openSqliteStore(dataDir);
    const now = new Date();
    try {
      for (let i = 0; i < 5; i++)
        await store.saveRejected(
          { source: 'https', reason: 'x', size: 1 },
          new Date(now.getTime() - 100 * DAY),
        );
      for (let i = 0; i < 4; i++) {
        const start = new Date(now.getTime() - (60 + i) * DAY);
        await store.saveReport(
          { report: tlsReport(`old-${i}`, start), source: 'https', dkim: 'none', warnings: [] },
          now,
        );
      }
      const fresh = new Date(now.getTime() - 2 * DAY);
      await store.saveReport(
        { report: tlsReport('fresh', fresh), source: 'https', dkim: 'none', warnings: [] },
        now,
      );
    } finally {
      await store.close();
    }
    serve = spawnServe(['--workers', '2', '--listen', '127.0.0.1:0', '--data-dir', dataDir], {
      cwd: root,
      env: { MXGUARD_REPORT_RETENTION_DAYS: '30' },
    });
    const { stdout } = serve;
    const runs = () =>
      stdout()
        .split('\n')
        .filter((l) => l.includes('retention: deleted old reports'))
        .map((l) => JSON.parse(l) as { role: string; reports: number; rejected: number });
    try {
      const [run] = await eventually(
        () => (runs().length > 0 ? runs() : undefined),
        'the retention run',
        60_000,
      );
      assert.equal(run?.role, 'primary');
      assert.equal(run?.reports, 4);
      assert.equal(run?.rejected, 5);
      await eventually(
        () => (stdout().includes('"msg":"serving"') ? true : undefined),
        'serve to be up',
        60_000,
      );
      assert.equal(runs().length, 1, 'one process ran it');
      const check = await openSqliteStore(dataDir);
      try {
        assert.deepEqual(await reportIds(check), ['fresh']);
        assert.equal((await check.listRejected()).total, 0);
      } finally {
        await check.close();
      }
    } finally {
      await serve.stop();
    }
  });
});
