// The SQLite store (src/store/sqlite.ts): every Store method, migrations, idempotent reports,
// policy id bumps, dashboard queries over hand-built reports, and two connections at once.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { openStore } from '../../src/store/index.js';
import { SCHEMA_VERSION } from '../../src/store/migrations.js';
import { CLIP_MARK, LIST_PAGE_MAX_BYTES, LIST_TEXT_MAX } from '../../src/store/paging.js';
import { DATABASE_FILE, FETCH_LOG_KEEP, openSqliteStore } from '../../src/store/sqlite.js';
import type { DomainSettings, NewReport, Store } from '../../src/store/types.js';
import type { TlsFailure, TlsPolicyResult, TlsReport } from '../../src/tlsrpt/report.js';
import { eventually } from '../fixtures/serve/helpers.js';
import { insertLegacyReports, MIB, rowsOfReport } from '../helpers/legacy-reports.js';
import { rejectsWithStoreError } from '../helpers/store.js';

let root: string;
let counter = 0;
/** A fresh, empty data directory (that does not exist yet). */
const freshDir = () => join(root, `data-${++counter}`, 'nested');

before(() => {
  root = mkdtempSync(join(tmpdir(), 'mxguard-store-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

async function withFreshStore(work: (store: Store, dir: string) => Promise<void>): Promise<void> {
  const dir = freshDir();
  const store = await openSqliteStore(dir);
  try {
    await work(store, dir);
  } finally {
    await store.close();
  }
}

const rejects = rejectsWithStoreError;

const T0 = new Date('2024-05-01T10:00:00Z');
const later = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const settings: DomainSettings = {
  mode: 'testing',
  mx: ['mail.example.com'],
  maxAge: 604800,
  rua: ['mailto:tlsrpt@example.com'],
};

function policy(
  domain: string,
  successful: number,
  failed: number,
  failures: TlsFailure[] = [],
): TlsPolicyResult {
  return { type: 'sts', domain, policyStrings: [], mxHosts: [], successful, failed, failures };
}

function report(
  reportId: string,
  start: string,
  policies: TlsPolicyResult[],
  organization = 'Sender A',
): TlsReport {
  return { organization, reportId, start, end: '2024-05-31T23:59:59Z', policies };
}

function newReport(r: TlsReport, extra: Partial<NewReport> = {}): NewReport {
  return { report: r, source: 'https', dkim: 'none', warnings: [], ...extra };
}

describe('opening and migrations', () => {
  it('creates the data directory and the database file, at the current schema version', async () => {
    const dir = freshDir();
    assert.equal(existsSync(dir), false);
    const store = await openStore(dir);
    await store.close();
    const db = new Database(join(dir, DATABASE_FILE), { readonly: true });
    try {
      assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      const tables = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .pluck()
        .all();
      for (const t of [
        'domains',
        'policy_versions',
        'reports',
        'report_policies',
        'failures',
        'rejected',
        'fetches',
        'settings',
      ]) {
        assert.ok(tables.includes(t), `table ${t}`);
      }
    } finally {
      db.close();
    }
  });

  it('re-opens an existing database and keeps its data', async () => {
    const dir = freshDir();
    let store = await openSqliteStore(dir);
    await store.addDomain('example.com', settings, T0);
    await store.setSetting('k', 'v');
    await store.close();
    store = await openSqliteStore(dir);
    try {
      assert.equal((await store.getDomain('example.com'))?.policyId, '20240501100000');
      assert.equal(await store.getSetting('k'), 'v');
    } finally {
      await store.close();
    }
  });

  it('two processes-worth of connections opening a new database at once both succeed', async () => {
    const dir = freshDir();
    const [a, b] = await Promise.all([openSqliteStore(dir), openSqliteStore(dir)]);
    await a.close();
    await b.close();
  });

  it('refuses a database from a newer mxguard', async () => {
    const dir = freshDir();
    (await openSqliteStore(dir)).close();
    const db = new Database(join(dir, DATABASE_FILE));
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    await rejects(openSqliteStore(dir), 'STORE_IO', /newer than this mxguard/);
  });

  it('refuses a file that is not a database, naming it', async () => {
    const dir = freshDir();
    (await openSqliteStore(dir)).close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(join(dir, DATABASE_FILE + suffix), { force: true });
    writeFileSync(join(dir, DATABASE_FILE), 'this is not SQLite, just text that is long enough '.repeat(100));
    await rejects(openSqliteStore(dir), 'STORE_IO', new RegExp(DATABASE_FILE));
  });

  it('refuses a data directory that cannot be created', async () => {
    const file = join(root, `plain-file-${++counter}`);
    writeFileSync(file, 'x');
    await rejects(openSqliteStore(join(file, 'sub')), 'STORE_IO', /cannot open the database/);
  });

  it('a closed store refuses calls', async () => {
    const store = await openSqliteStore(freshDir());
    await store.close();
    await store.close(); // twice is fine
    await rejects(store.listDomains(), 'STORE_IO', /closed/);
  });
});

describe('domains', () => {
  it('addDomain stores normalised settings, the policy text and a first history entry', async () => {
    await withFreshStore(async (store) => {
      const d = await store.addDomain('Example.COM.', { ...settings, mx: ['MAIL.example.com'] }, T0);
      assert.deepEqual(d, {
        name: 'example.com',
        mode: 'testing',
        mx: ['mail.example.com'],
        maxAge: 604800,
        rua: ['mailto:tlsrpt@example.com'],
        policyId: '20240501100000',
        policyText: 'version: STSv1\nmode: testing\nmx: mail.example.com\nmax_age: 604800\n',
        createdAt: '2024-05-01T10:00:00.000Z',
        updatedAt: '2024-05-01T10:00:00.000Z',
      });
      assert.deepEqual(await store.getDomain('EXAMPLE.com'), d);
      assert.deepEqual(await store.policyHistory('example.com'), [
        { policyId: d.policyId, policyText: d.policyText, createdAt: d.createdAt },
      ]);
    });
  });

  it('addDomain refuses a duplicate, a bad name and bad settings', async () => {
    await withFreshStore(async (store) => {
      await store.addDomain('example.com', settings, T0);
      await rejects(store.addDomain('EXAMPLE.com.', settings, T0), 'STORE_DOMAIN_EXISTS', /example\.com/);
      await rejects(store.addDomain('exa_mple.com', settings, T0), 'STORE_INVALID', /domain "exa_mple.com"/);
      await rejects(
        store.addDomain('other.com', { ...settings, maxAge: 31557601 }, T0),
        'STORE_INVALID',
        /^maxAge/,
      );
      await rejects(store.addDomain('other.com', { ...settings, mx: ['a b'] }, T0), 'STORE_INVALID', /^mx:/);
      await rejects(
        store.addDomain('other.com', { ...settings, rua: ['ftp://x'] }, T0),
        'STORE_INVALID',
        /^rua:/,
      );
      assert.equal((await store.listDomains()).length, 1);
    });
  });

  it('listDomains is sorted by name', async () => {
    await withFreshStore(async (store) => {
      for (const name of ['b.example', 'c.example', 'a.example']) await store.addDomain(name, settings, T0);
      assert.deepEqual(
        (await store.listDomains()).map((d) => d.name),
        ['a.example', 'b.example', 'c.example'],
      );
    });
  });

  it('updateDomain: a policy change bumps the id and writes history; the same second twice still increases', async () => {
    await withFreshStore(async (store) => {
      await store.addDomain('example.com', settings, T0);
      const a = await store.updateDomain('example.com', { mode: 'enforce' }, T0);
      const b = await store.updateDomain('example.com', { maxAge: 1209600 }, T0);
      const c = await store.updateDomain(
        'example.com',
        { mx: ['mx1.example.com', 'mx2.example.com'] },
        later(3600),
      );
      assert.deepEqual(
        [a.policyId, b.policyId, c.policyId],
        ['20240501100001', '20240501100002', '20240501110000'],
      );
      assert.equal(
        c.policyText,
        'version: STSv1\nmode: enforce\nmx: mx1.example.com\nmx: mx2.example.com\nmax_age: 1209600\n',
      );
      assert.equal(c.createdAt, '2024-05-01T10:00:00.000Z');
      assert.equal(c.updatedAt, '2024-05-01T11:00:00.000Z');
      const history = await store.policyHistory('example.com');
      assert.deepEqual(
        history.map((v) => v.policyId),
        ['20240501110000', '20240501100002', '20240501100001', '20240501100000'],
      );
      assert.equal(history[0]!.policyText, c.policyText);
      assert.match(history[3]!.policyText, /mode: testing/);
    });
  });

  it('updateDomain: a no-op patch changes nothing, a rua change keeps the policy id', async () => {
    await withFreshStore(async (store) => {
      const d = await store.addDomain('example.com', settings, T0);
      assert.deepEqual(await store.updateDomain('example.com', {}, later(10)), d);
      assert.deepEqual(
        await store.updateDomain('example.com', { mode: 'testing', mx: ['MAIL.example.com.'] }, later(10)),
        d,
      );
      const r = await store.updateDomain('example.com', { rua: ['https://r.example.com/tlsrpt'] }, later(20));
      assert.equal(r.policyId, d.policyId);
      assert.deepEqual(r.rua, ['https://r.example.com/tlsrpt']);
      assert.equal(r.updatedAt, later(20).toISOString());
      assert.equal((await store.policyHistory('example.com')).length, 1);
    });
  });

  it('updateDomain refuses an unknown domain and invalid values, leaving the domain as it was', async () => {
    await withFreshStore(async (store) => {
      const d = await store.addDomain('example.com', settings, T0);
      await rejects(
        store.updateDomain('nope.example', { mode: 'enforce' }, T0),
        'STORE_DOMAIN_UNKNOWN',
        /nope\.example/,
      );
      await rejects(store.updateDomain('example.com', { mx: [] }, T0), 'STORE_INVALID', /^mx: mode testing/);
      await rejects(
        store.updateDomain('example.com', { mode: 'off' as 'none' }, T0),
        'STORE_INVALID',
        /^mode/,
      );
      assert.deepEqual(await store.getDomain('example.com'), d);
      // mode none may drop the mx list
      const none = await store.updateDomain('example.com', { mode: 'none', mx: [] }, later(1));
      assert.equal(none.policyText, 'version: STSv1\nmode: none\nmax_age: 604800\n');
    });
  });

  it('removeDomain removes the domain and its history; adding it again publishes a greater id', async () => {
    await withFreshStore(async (store) => {
      await store.addDomain('example.com', settings, T0);
      await store.updateDomain('example.com', { mode: 'enforce' }, T0); // id ...01
      assert.equal(await store.removeDomain('EXAMPLE.com'), true);
      assert.equal(await store.removeDomain('example.com'), false);
      assert.equal(await store.getDomain('example.com'), undefined);
      assert.deepEqual(await store.policyHistory('example.com'), []);
      const again = await store.addDomain('example.com', settings, T0);
      assert.equal(again.policyId, '20240501100002');
    });
  });

  it('getDomain of a name that is not even valid is simply undefined', async () => {
    await withFreshStore(async (store) => {
      assert.equal(await store.getDomain('not a domain'), undefined);
      assert.equal(await store.removeDomain(''), false);
    });
  });
});

describe('reports', () => {
  const r1 = report('r1', '2024-05-01T00:00:00Z', [
    policy('Example.com.', 100, 7, [
      {
        resultType: 'certificate-expired',
        count: 5,
        sendingMtaIp: '192.0.2.1',
        receivingMxHostname: 'MX1.example.com.',
      },
      {
        resultType: 'starttls-not-supported',
        count: 2,
        sendingMtaIp: '192.0.2.2',
        receivingMxHostname: 'mx2.example.com',
      },
    ]),
  ]);
  const r2 = report(
    'r2',
    '2024-05-01T12:00:00Z',
    [
      policy('example.com', 50, 3, [
        { resultType: 'certificate-expired', count: 3, sendingMtaIp: '192.0.2.1' },
      ]),
      policy('other.org', 10, 10, [{ resultType: 'validation-failure', count: 10 }]),
    ],
    'Sender B',
  );
  // Spans three days: counts on its start day.
  const r3 = {
    ...report('r3', '2024-05-02T23:00:00Z', [policy('example.com', 20, 0)]),
    end: '2024-05-04T22:59:59Z',
  };
  // 2024-04-30T22:00-05:00 is 2024-05-01T03:00Z: a UTC day, whatever the sender's zone.
  const r4 = report('r4', '2024-04-30T22:00:00-05:00', [policy('example.com', 1, 0)], 'Sender C');

  async function seeded(work: (store: Store, ids: number[]) => Promise<void>): Promise<void> {
    await withFreshStore(async (store) => {
      const ids: number[] = [];
      for (const r of [r1, r2, r3, r4]) ids.push((await store.saveReport(newReport(r), T0)).id);
      await work(store, ids);
    });
  }

  it('saveReport is idempotent on organization + report id', async () => {
    await withFreshStore(async (store) => {
      const first = await store.saveReport(newReport(r1), T0);
      assert.deepEqual(first, { id: first.id, created: true });
      const again = await store.saveReport(newReport({ ...r1, policies: [] }, { source: 'smtp' }), later(5));
      assert.deepEqual(again, { id: first.id, created: false });
      // the same report id from another organization is another report
      const other = await store.saveReport(newReport({ ...r1, organization: 'Other' }), T0);
      assert.equal(other.created, true);
      assert.notEqual(other.id, first.id);
      const stored = await store.getReport(first.id);
      assert.equal(stored?.source, 'https');
      assert.equal(stored?.report.policies.length, 1);
      assert.equal((await store.listReports()).items.length, 2);
    });
  });

  it('getReport returns the whole report, warnings and submitter', async () => {
    await withFreshStore(async (store) => {
      const { id } = await store.saveReport(
        newReport(r1, {
          source: 'smtp',
          dkim: 'pass',
          submitter: 'reports@sender.example',
          warnings: ['w1'],
        }),
        T0,
      );
      assert.deepEqual(await store.getReport(id), {
        id,
        organization: 'Sender A',
        reportId: 'r1',
        start: '2024-05-01T00:00:00Z',
        end: '2024-05-31T23:59:59Z',
        domains: ['example.com'],
        successful: 100,
        failed: 7,
        source: 'smtp',
        dkim: 'pass',
        receivedAt: T0.toISOString(),
        report: r1,
        submitter: 'reports@sender.example',
        warnings: ['w1'],
      });
      assert.equal(await store.getReport(id + 1), undefined);
      assert.equal(await store.getReport(Number.NaN), undefined);
    });
  });

  it('saveReport keeps attacker-controlled text as data', async () => {
    await withFreshStore(async (store) => {
      const nasty = "<script>alert(1)</script>'; DROP TABLE reports; --\u0000\u001b[31m";
      const r = report(
        nasty,
        '2024-05-01T00:00:00Z',
        [policy(nasty, 1, 1, [{ resultType: nasty, count: 1 }])],
        nasty,
      );
      const { id } = await store.saveReport(newReport(r), T0);
      const stored = await store.getReport(id);
      assert.equal(stored?.organization, nasty);
      assert.equal(stored?.reportId, nasty);
      assert.deepEqual(stored?.report, r);
    });
  });

  const badReports: Array<[string, (r: NewReport) => unknown, RegExp]> = [
    ['an unknown source', (n) => ({ ...n, source: 'ftp' }), /^source/],
    ['an unknown dkim verdict', (n) => ({ ...n, dkim: 'maybe' }), /^dkim/],
    ['warnings not strings', (n) => ({ ...n, warnings: [1] }), /^warnings/],
    [
      'a start that is not a time',
      (n) => ({ ...n, report: { ...n.report, start: 'yesterday' } }),
      /^report\.start/,
    ],
    ['an end that is not a time', (n) => ({ ...n, report: { ...n.report, end: 5 } }), /^report\.end/],
    [
      'a negative count',
      (n) => ({ ...n, report: { ...n.report, policies: [policy('a.example', -1, 0)] } }),
      /successful/,
    ],
    [
      'a fractional count',
      (n) => ({ ...n, report: { ...n.report, policies: [policy('a.example', 0, 0.5)] } }),
      /failed/,
    ],
    [
      'a failure count beyond 2^53',
      (n) => ({
        ...n,
        report: { ...n.report, policies: [policy('a.example', 0, 0, [{ resultType: 'x', count: 2 ** 60 }])] },
      }),
      /failures\[0\]\.count/,
    ],
    [
      'totals beyond 2^53',
      (n) => ({
        ...n,
        report: {
          ...n.report,
          policies: [policy('a.example', 2 ** 53 - 1, 0), policy('b.example', 2 ** 53 - 1, 0)],
        },
      }),
      /successful total/,
    ],
    ['policies not a list', (n) => ({ ...n, report: { ...n.report, policies: {} } }), /^report\.policies/],
    ['no organization', (n) => ({ ...n, report: { ...n.report, organization: undefined } }), /organization/],
  ];
  for (const [name, damage, message] of badReports) {
    it(`saveReport refuses ${name} (STORE_INVALID) and stores nothing`, async () => {
      await withFreshStore(async (store) => {
        await rejects(store.saveReport(damage(newReport(r1)) as NewReport, T0), 'STORE_INVALID', message);
        assert.deepEqual(await store.listReports(), { items: [], nextCursor: null, total: 0 });
      });
    });
  }

  it('listReports: newest start first, with domains and totals', async () => {
    await seeded(async (store, [id1, id2, id3, id4]) => {
      const all = (await store.listReports()).items;
      assert.deepEqual(
        all.map((r) => r.id),
        [id3, id2, id4, id1],
      );
      const second = all[1]!;
      assert.deepEqual(second.domains, ['example.com', 'other.org']);
      assert.deepEqual([second.successful, second.failed], [60, 13]);
      assert.equal(second.organization, 'Sender B');
    });
  });

  const filters: Array<[string, Parameters<Store['listReports']>[0], string[]]> = [
    ['by domain (normalised)', { domain: 'OTHER.org.' }, ['r2']],
    ['by a domain without reports', { domain: 'none.example' }, []],
    ['since a date', { since: '2024-05-02' }, ['r3']],
    ['since a timestamp (inclusive)', { since: '2024-05-01T12:00:00Z' }, ['r3', 'r2']],
    ['until a date means up to its end', { until: '2024-05-01' }, ['r2', 'r4', 'r1']],
    ['until a timestamp (exclusive)', { until: '2024-05-01T12:00:00Z' }, ['r4', 'r1']],
    ['a timestamp without zone is UTC', { until: '2024-05-01T03:00:00' }, ['r1']],
    ['a zone offset', { since: '2024-05-01T13:00:00+01:00' }, ['r3', 'r2']],
    ['limit', { limit: 2 }, ['r3', 'r2']],
    [
      'domain and time together',
      { domain: 'example.com', since: '2024-05-01T01:00:00Z', until: '2024-05-01' },
      ['r2', 'r4'],
    ],
  ];
  for (const [name, filter, expected] of filters) {
    it(`listReports filters ${name}`, async () => {
      await seeded(async (store) => {
        assert.deepEqual(
          (await store.listReports(filter)).items.map((r) => r.reportId),
          expected,
        );
      });
    });
  }

  it('listReports refuses bad filters', async () => {
    await seeded(async (store) => {
      await rejects(store.listReports({ since: 'last week' }), 'STORE_INVALID', /^since: "last week"/);
      await rejects(store.listReports({ until: '2024-13-45T99' }), 'STORE_INVALID', /^until/);
      await rejects(store.listReports({ limit: -1 }), 'STORE_INVALID', /^limit/);
      await rejects(store.listReports({ limit: 1.5 }), 'STORE_INVALID', /^limit/);
      await rejects(store.listReports({ cursor: 'not-a-cursor' }), 'STORE_INVALID', /^cursor/);
    });
  });

  it('dailyCounts: sessions per UTC start day for one policy domain', async () => {
    await seeded(async (store) => {
      assert.deepEqual(await store.dailyCounts('example.com', '2024-05-01', '2024-05-31'), [
        { day: '2024-05-01', successful: 151, failed: 10 },
        { day: '2024-05-02', successful: 20, failed: 0 },
      ]);
      assert.deepEqual(await store.dailyCounts('Other.Org', '2024-04-01', '2024-06-01'), [
        { day: '2024-05-01', successful: 10, failed: 10 },
      ]);
      assert.deepEqual(await store.dailyCounts('example.com', '2024-05-02', '2024-05-02'), [
        { day: '2024-05-02', successful: 20, failed: 0 },
      ]);
      assert.deepEqual(await store.dailyCounts('example.com', '2024-05-03', '2024-05-31'), []);
      assert.deepEqual(await store.dailyCounts('unknown.example', '2024-05-01', '2024-05-31'), []);
      await rejects(store.dailyCounts('example.com', 'x', '2024-05-31'), 'STORE_INVALID', /^since/);
    });
  });

  const breakdowns: Array<
    [Parameters<Store['failureBreakdown']>[1], string | undefined, Array<[string, number]>]
  > = [
    [
      'resultType',
      undefined,
      [
        ['certificate-expired', 8],
        ['starttls-not-supported', 2],
      ],
    ],
    [
      'organization',
      undefined,
      [
        ['Sender A', 7],
        ['Sender B', 3],
      ],
    ],
    // MX host names compare case-insensitively without the final dot; "" = not given by the sender
    [
      'receivingMxHostname',
      undefined,
      [
        ['mx1.example.com', 5],
        ['', 3],
        ['mx2.example.com', 2],
      ],
    ],
    [
      'sendingMtaIp',
      undefined,
      [
        ['192.0.2.1', 8],
        ['192.0.2.2', 2],
      ],
    ],
    ['resultType', '2024-05-01T06:00:00Z', [['certificate-expired', 3]]],
    ['organization', '2024-05-02', []],
  ];
  for (const [by, since, expected] of breakdowns) {
    it(`failureBreakdown by ${by}${since ? ` since ${since}` : ''}`, async () => {
      await seeded(async (store) => {
        const rows = await store.failureBreakdown('example.com', by, since);
        assert.deepEqual(
          rows.map((r) => [r.key, r.count]),
          expected,
        );
      });
    });
  }

  it('failureBreakdown refuses an unknown key', async () => {
    await seeded(async (store) => {
      await rejects(store.failureBreakdown('example.com', 'country' as 'resultType'), 'STORE_INVALID', /^by/);
    });
  });

  it('the dashboard queries use the indexes', async () => {
    await withFreshStore(async (store, dir) => {
      await store.saveReport(newReport(r1), T0);
      const db = new Database(join(dir, DATABASE_FILE), { readonly: true });
      try {
        const plan = (sql: string) =>
          (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as Array<{ detail: string }>)
            .map((r) => r.detail)
            .join('\n');
        assert.match(
          plan(
            "SELECT start_day, sum(successful), sum(failed) FROM report_policies WHERE domain = 'x' AND start_ms >= 0 AND start_ms < 1 GROUP BY start_day",
          ),
          /COVERING INDEX report_policies_domain_start/,
        );
        assert.match(
          plan(
            "SELECT result_type, sum(count) FROM failures WHERE domain = 'x' AND start_ms >= 0 GROUP BY result_type",
          ),
          /INDEX failures_domain_start/,
        );
        // the report list's keyset page, purging by date, retention of rejected input
        assert.match(
          plan(
            'SELECT id FROM reports r WHERE r.start_ms >= 0 AND r.start_ms < 9 AND (r.start_ms, r.id) < (3, 4) ORDER BY r.start_ms DESC, r.id DESC LIMIT 5',
          ),
          /^SEARCH r USING COVERING INDEX reports_start \(start_ms>\? AND start_ms<\?\)$/,
        );
        assert.match(
          plan('SELECT id FROM reports WHERE start_ms < 5 ORDER BY start_ms, id LIMIT 500'),
          /COVERING INDEX reports_start/,
        );
        assert.match(
          plan("SELECT id FROM rejected WHERE received_at < 'x' ORDER BY received_at, id LIMIT 500"),
          /COVERING INDEX rejected_received/,
        );
      } finally {
        db.close();
      }
    });
  });
});

describe('reports: pages, clipped list values, deletion, purging', () => {
  const HOUR = 3_600_000;
  const FROM = Date.parse('2024-05-01T00:00:00Z');

  /** `n` reports about `domain`; three share each start hour, so the id breaks ties. */
  async function many(store: Store, n: number, prefix: string, domain = 'example.com', from = FROM) {
    const ids: number[] = [];
    for (let i = 0; i < n; i++) {
      const start = new Date(from + Math.floor(i / 3) * HOUR).toISOString();
      const r = report(`${prefix}${i}`, start, [policy(domain, 10, 1, [{ resultType: 'x', count: 1 }])]);
      ids.push((await store.saveReport(newReport(r), T0)).id);
    }
    return ids;
  }

  async function allPages(store: Store, filter: Parameters<Store['listReports']>[0] = {}) {
    const seen: number[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 1000; pages++) {
      const page = await store.listReports({ ...filter, cursor });
      seen.push(...page.items.map((r) => r.id));
      if (page.nextCursor === null) return seen;
      cursor = page.nextCursor;
    }
    throw new Error('the pages never end');
  }

  it('listReports pages with an opaque cursor: every report once, newest first, the total on each page', async () => {
    await withFreshStore(async (store) => {
      await many(store, 25, 'p');
      const whole = (await store.listReports({ limit: 100 })).items.map((r) => r.id);
      assert.equal(whole.length, 25);
      const seen: number[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.listReports({ limit: 4, cursor });
        assert.equal(page.total, 25);
        assert.ok(page.items.length <= 4);
        seen.push(...page.items.map((r) => r.id));
        cursor = page.nextCursor ?? undefined;
        pages++;
      } while (cursor !== undefined);
      assert.equal(pages, 7);
      assert.deepEqual(seen, whole);
      // a filter pages the same way and counts only what matches
      await many(store, 5, 'o', 'other.example');
      const other = await store.listReports({ domain: 'other.example', limit: 2 });
      assert.equal(other.total, 5);
      assert.equal((await allPages(store, { domain: 'other.example', limit: 2 })).length, 5);
    });
  });

  it('pages stay exact while reports arrive between them (keyset, not offset)', async () => {
    await withFreshStore(async (store) => {
      const original = await many(store, 30, 'a');
      const seen: number[] = [];
      let cursor: string | undefined;
      let round = 0;
      do {
        const page = await store.listReports({ limit: 5, cursor });
        seen.push(...page.items.map((r) => r.id));
        cursor = page.nextCursor ?? undefined;
        // newer reports (they go before every page), and reports with the same start as the
        // page's last one and older ones (they may come later, but never twice)
        const last = page.items.at(-1);
        if (last) {
          await many(store, 2, `new${round}-`, 'example.com', FROM + 100 * HOUR + round * HOUR);
          await many(store, 1, `same${round}-`, 'example.com', Date.parse(last.start));
          await many(store, 1, `old${round}-`, 'example.com', FROM - (round + 1) * HOUR);
        }
        round++;
      } while (cursor !== undefined);
      assert.equal(new Set(seen).size, seen.length, 'no report twice');
      for (const id of original) assert.ok(seen.includes(id), `report ${id} listed`);
    });
  });

  it('list views clip long values with a marker and name the clipped fields; a page stays under the byte cap', async () => {
    await withFreshStore(async (store, dir) => {
      await many(store, 3, 'n');
      const giant = insertLegacyReports(dir, [
        {
          organization: `\u202eEvil ${'o'.repeat(2 * MIB)}`,
          reportId: 'r'.repeat(MIB),
          start: '2024-05-02T00:00:00Z',
          domain: `${'d'.repeat(MIB)}.example`,
          submitter: 's'.repeat(MIB),
        },
        ...Array.from({ length: 5 }, (_, i) => ({
          organization: `${i}${'\u0001'.repeat(MIB)}`,
          reportId: `legacy-${i}`,
          start: '2024-05-02T01:00:00Z',
          domain: 'example.com',
        })),
      ]);
      const page = await store.listReports({ limit: 1000 });
      assert.equal(page.total, 9);
      assert.equal(page.items.length, 9);
      assert.ok(Buffer.byteLength(JSON.stringify(page)) <= LIST_PAGE_MAX_BYTES);
      assert.equal(page.nextCursor, null);
      const big = page.items.find((r) => r.id === giant[0])!;
      assert.deepEqual(big.clipped, ['organization', 'reportId', 'domains']);
      assert.equal(big.organization, `\u202eEvil ${'o'.repeat(LIST_TEXT_MAX - 6)}${CLIP_MARK}`);
      assert.equal(big.reportId, `${'r'.repeat(LIST_TEXT_MAX)}${CLIP_MARK}`);
      assert.equal(big.domains[0], `${'d'.repeat(LIST_TEXT_MAX)}${CLIP_MARK}`);
      const small = page.items.find((r) => r.reportId === 'n0')!;
      assert.equal(small.clipped, undefined, 'nothing clipped: no clipped field');
      assert.equal(small.organization, 'Sender A');
    });
  });

  it('a page holds only what fits in the byte cap; the rest follows on the next pages', async () => {
    await withFreshStore(async (store, dir) => {
      // 1000 rows whose clipped values are all control characters: about 3 KB of JSON each
      insertLegacyReports(
        dir,
        Array.from({ length: 1000 }, (_, i) => ({
          organization: `${'\u0001'.repeat(400)}${i}`,
          reportId: `${'\u0002'.repeat(400)}${i}`,
          start: new Date(FROM + i * 60_000).toISOString(),
          domain: 'example.com',
        })),
      );
      const first = await store.listReports({ limit: 1000 });
      assert.ok(first.items.length < 1000, `${first.items.length} items on the first page`);
      assert.ok(first.items.length > 100);
      assert.notEqual(first.nextCursor, null);
      assert.ok(Buffer.byteLength(JSON.stringify(first)) <= LIST_PAGE_MAX_BYTES);
      assert.equal(first.total, 1000);
      const ids = await allPages(store, { limit: 1000 });
      assert.equal(new Set(ids).size, 1000);
    });
  });

  it('getReport with maxBytes: a report stored larger comes back as its clipped summary, marked tooLarge', async () => {
    await withFreshStore(async (store, dir) => {
      const [id] = insertLegacyReports(dir, [
        {
          organization: 'o'.repeat(3 * MIB),
          reportId: 'big',
          start: '2024-05-02T00:00:00Z',
          domain: 'example.com',
        },
      ]);
      const summary = await store.getReport(id!, { maxBytes: MIB });
      assert.ok(summary && 'tooLarge' in summary);
      assert.ok(summary.tooLarge.bytes > 3 * MIB);
      assert.equal(summary.tooLarge.maxBytes, MIB);
      assert.equal(summary.organization, `${'o'.repeat(LIST_TEXT_MAX)}${CLIP_MARK}`);
      assert.equal(summary.reportId, 'big');
      assert.equal('report' in summary, false);
      // without a limit (the CLI's --json), the whole report
      const whole = await store.getReport(id!);
      assert.equal(whole?.organization.length, 3 * MIB);
      const { id: small } = await store.saveReport(newReport(report('s', '2024-05-01T00:00:00Z', [])), T0);
      assert.equal((await store.getReport(small, { maxBytes: MIB }))?.reportId, 's');
      assert.ok('report' in (await store.getReport(small, { maxBytes: MIB }))!);
    });
  });

  it('deleteReports removes reports with their policies and failures; the daily counts and breakdowns follow', async () => {
    await withFreshStore(async (store, dir) => {
      const [a, b, c] = await many(store, 3, 'd');
      const before = await store.dailyCounts('example.com', '2024-05-01', '2024-05-01');
      assert.deepEqual(before, [{ day: '2024-05-01', successful: 30, failed: 3 }]);
      assert.deepEqual(rowsOfReport(dir, a!), { reports: 1, policies: 1, failures: 1 });
      assert.deepEqual(await store.deleteReports([a!, c!, 999_999, a!]), [a!, c!]);
      assert.deepEqual(rowsOfReport(dir, a!), { reports: 0, policies: 0, failures: 0 });
      assert.deepEqual(await store.dailyCounts('example.com', '2024-05-01', '2024-05-01'), [
        { day: '2024-05-01', successful: 10, failed: 1 },
      ]);
      assert.deepEqual(await store.failureBreakdown('example.com', 'resultType'), [{ key: 'x', count: 1 }]);
      assert.deepEqual(
        (await store.listReports()).items.map((r) => r.id),
        [b],
      );
      assert.deepEqual(await store.deleteReports([]), []);
      await rejects(store.deleteReports([1.5]), 'STORE_INVALID', /^id/);
    });
  });

  it('deleting a legacy giant report works like any other', async () => {
    await withFreshStore(async (store, dir) => {
      const [id] = insertLegacyReports(dir, [
        {
          organization: 'o'.repeat(4 * MIB),
          reportId: 'giant',
          start: '2024-05-02T00:00:00Z',
          domain: 'example.com',
          failures: [{ resultType: 'x'.repeat(MIB), count: 3, receivingMxHostname: 'm'.repeat(MIB) }],
        },
      ]);
      assert.deepEqual(await store.deleteReports([id!]), [id!]);
      assert.deepEqual(rowsOfReport(dir, id!), { reports: 0, policies: 0, failures: 0 });
    });
  });

  it('purgeReports by domain, before a date, or both: exact counts, in batches of `limit`, oldest first', async () => {
    await withFreshStore(async (store) => {
      await many(store, 12, 'e', 'example.com', FROM); // 4 start hours on 2024-05-01
      await many(store, 6, 'f', 'other.example', FROM); // 2024-05-01
      await many(store, 6, 'g', 'example.com', FROM + 48 * HOUR); // 2024-05-03
      // a dry run (limit 0) only counts
      assert.deepEqual(await store.purgeReports({ domain: 'Example.COM', limit: 0 }), {
        deleted: 0,
        remaining: 18,
      });
      assert.deepEqual(await store.purgeReports({ before: '2024-05-02', limit: 0 }), {
        deleted: 0,
        remaining: 18,
      });
      assert.deepEqual(await store.purgeReports({ domain: 'example.com', before: '2024-05-02', limit: 5 }), {
        deleted: 5,
        remaining: 7,
      });
      // oldest first: the first five of the twelve are gone
      const left = (await store.listReports({ domain: 'example.com', until: '2024-05-01' })).items;
      assert.deepEqual(left.map((r) => r.reportId).sort(), ['e10', 'e11', 'e5', 'e6', 'e7', 'e8', 'e9']);
      assert.deepEqual(
        await store.purgeReports({ domain: 'example.com', before: '2024-05-02', limit: 500 }),
        {
          deleted: 7,
          remaining: 0,
        },
      );
      // a timestamp bound is exclusive
      assert.deepEqual(await store.purgeReports({ before: '2024-05-01T01:00:00Z', limit: 500 }), {
        deleted: 3,
        remaining: 0,
      });
      assert.deepEqual(await store.purgeReports({ domain: 'other.example', limit: 500 }), {
        deleted: 3,
        remaining: 0,
      });
      assert.equal((await store.listReports()).total, 6);
      await rejects(store.purgeReports({ limit: 500 }), 'STORE_INVALID', /domain or before/);
      await rejects(store.purgeReports({ before: 'soon', limit: 500 }), 'STORE_INVALID', /^before/);
      await rejects(store.purgeReports({ domain: 'example.com', limit: -1 }), 'STORE_INVALID', /^limit/);
    });
  });

  it('purgeRejected removes entries received before a time, in batches', async () => {
    await withFreshStore(async (store) => {
      for (let i = 0; i < 5; i++)
        await store.saveRejected({ source: 'https', reason: 'x', size: 1 }, later(i));
      assert.deepEqual(await store.purgeRejected({ before: later(3).toISOString(), limit: 2 }), {
        deleted: 2,
        remaining: 1,
      });
      assert.deepEqual(await store.purgeRejected({ before: later(3).toISOString(), limit: 2 }), {
        deleted: 1,
        remaining: 0,
      });
      assert.equal((await store.listRejected()).total, 2);
    });
  });

  it('failureBreakdown clips long keys (legacy rows) and says so', async () => {
    await withFreshStore(async (store, dir) => {
      insertLegacyReports(dir, [
        {
          organization: 'O'.repeat(MIB),
          reportId: 'b1',
          start: '2024-05-02T00:00:00Z',
          domain: 'example.com',
          failures: [
            {
              resultType: 'x',
              count: 2,
              receivingMxHostname: 'm'.repeat(MIB),
              sendingMtaIp: 'i'.repeat(MIB),
            },
          ],
        },
      ]);
      for (const by of ['organization', 'receivingMxHostname', 'sendingMtaIp'] as const) {
        const [row] = await store.failureBreakdown('example.com', by);
        assert.equal(row?.key.length, LIST_TEXT_MAX + CLIP_MARK.length, by);
        assert.equal(row?.clipped, true, by);
        assert.equal(row?.count, 2);
      }
    });
  });

  it('listRejected and listFetches page with cursors and totals; long rejected text is clipped', async () => {
    await withFreshStore(async (store) => {
      for (let i = 0; i < 7; i++) {
        await store.saveRejected(
          {
            source: 'https',
            submitter: i === 0 ? 's'.repeat(MIB) : `192.0.2.${i}`,
            reason: `r${i}`,
            size: i,
          },
          later(i),
        );
      }
      const seen: number[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.listRejected({ limit: 3, cursor });
        assert.equal(page.total, 7);
        seen.push(...page.items.map((r) => r.size));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      assert.deepEqual(seen, [6, 5, 4, 3, 2, 1, 0]);
      const oldest = (await store.listRejected({ limit: 100 })).items.at(-1)!;
      assert.equal(oldest.submitter, `${'s'.repeat(LIST_TEXT_MAX)}${CLIP_MARK}`);
      assert.deepEqual(oldest.clipped, ['submitter']);

      for (let i = 0; i < 5; i++) {
        store.logFetch({
          at: later(i).toISOString(),
          domain: 'example.com',
          clientIp: '192.0.2.1',
          userAgent: `a${i}`,
        });
      }
      const first = await store.listFetches('example.com', { limit: 2 });
      assert.equal(first.total, 5);
      const second = await store.listFetches('example.com', { limit: 2, cursor: first.nextCursor! });
      assert.deepEqual(
        [...first.items, ...second.items].map((f) => f.userAgent),
        ['a4', 'a3', 'a2', 'a1'],
      );
      // a page is plain data: it survives JSON and spreading whole
      assert.deepEqual(JSON.parse(JSON.stringify(second)), { ...second });
      // a cursor of one list is refused by another
      await rejects(store.listReports({ cursor: first.nextCursor! }), 'STORE_INVALID', /^cursor/);
    });
  });
});

describe('rejected input', () => {
  it('saveRejected and listRejected, newest first', async () => {
    await withFreshStore(async (store) => {
      const a = await store.saveRejected(
        { source: 'smtp', submitter: 'x@y.example', reason: 'no DKIM signature', size: 10 },
        T0,
      );
      const b = await store.saveRejected({ source: 'import', reason: 'not a report', size: 0 }, later(1));
      assert.deepEqual((await store.listRejected()).items, [
        { id: b, source: 'import', reason: 'not a report', size: 0, receivedAt: later(1).toISOString() },
        {
          id: a,
          source: 'smtp',
          submitter: 'x@y.example',
          reason: 'no DKIM signature',
          size: 10,
          receivedAt: T0.toISOString(),
        },
      ]);
      assert.equal((await store.listRejected({ limit: 1 })).items.length, 1);
      assert.equal((await store.listRejected({ limit: 1 })).total, 2);
      await rejects(
        store.saveRejected({ source: 'pigeon' as 'smtp', reason: 'x', size: 1 }, T0),
        'STORE_INVALID',
        /^source/,
      );
      await rejects(
        store.saveRejected({ source: 'smtp', reason: 'x', size: -1 }, T0),
        'STORE_INVALID',
        /^size/,
      );
    });
  });
});

const fetch = (i: number, domain = 'example.com') => ({
  at: later(i).toISOString(),
  domain,
  clientIp: `192.0.2.${i % 250}`,
  userAgent: `agent ${i}`,
});

/** Wait (bounded, no timing assertion) until `reader` sees an entry of the timer-driven fetch-log flush. */
const untilFetchLogged = (reader: Store) =>
  eventually(
    async () => ((await reader.listFetches('example.com')).items.length > 0 ? true : undefined),
    'the fetch log entry',
  );

describe('policy fetch log', () => {
  it('listFetches sees entries logged just before (it flushes), newest first, per domain', async () => {
    await withFreshStore(async (store) => {
      store.logFetch(fetch(1));
      store.logFetch(fetch(2, 'MTA-STS-less.example'));
      store.logFetch(fetch(3));
      assert.deepEqual((await store.listFetches('example.com')).items, [fetch(3), fetch(1)]);
      assert.deepEqual((await store.listFetches('mta-sts-less.example', { limit: 10 })).items, [
        fetch(2, 'mta-sts-less.example'),
      ]);
      assert.equal((await store.listFetches('example.com', { limit: 1 })).items.length, 1);
    });
  });

  it('a batch of 100 is written at once, and close writes the rest', async () => {
    const dir = freshDir();
    const store = await openSqliteStore(dir);
    const other = await openSqliteStore(dir); // sees only what was committed
    try {
      for (let i = 0; i < 100; i++) store.logFetch(fetch(i));
      assert.equal((await other.listFetches('example.com', { limit: 1000 })).items.length, 100);
      store.logFetch(fetch(100));
      assert.equal((await other.listFetches('example.com', { limit: 1000 })).items.length, 100);
      await store.close();
      assert.equal((await other.listFetches('example.com', { limit: 1000 })).items.length, 101);
    } finally {
      await store.close();
      await other.close();
    }
  });

  it('keeps the newest FETCH_LOG_KEEP entries, deleting at most twice the batch per flush', async () => {
    const dir = freshDir();
    const store = await openSqliteStore(dir);
    const raw = new Database(join(dir, DATABASE_FILE));
    try {
      const insert = raw.prepare(
        'INSERT INTO fetches (at, domain, client_ip, user_agent) VALUES (?, ?, ?, ?)',
      );
      raw.transaction(() => {
        for (let i = 0; i < FETCH_LOG_KEEP + 10; i++)
          insert.run(fetch(0).at, 'old.example', '192.0.2.1', 'x');
      })();
      const count = () => raw.prepare('SELECT count(*) FROM fetches').pluck().get() as number;
      for (let i = 0; i < 3; i++) store.logFetch(fetch(i));
      await store.listFetches('example.com'); // flushes the batch of 3
      assert.equal(count(), FETCH_LOG_KEEP + 13 - 6, 'the flush of 3 deleted 6 of the oldest');
      for (let i = 0; i < 10; i++) store.logFetch(fetch(i));
      await store.listFetches('example.com');
      assert.equal(count(), FETCH_LOG_KEEP, 'back at the cap');
      assert.equal(
        (await store.listFetches('example.com', { limit: 100 })).items.length,
        13,
        'the newest entries survive',
      );
    } finally {
      raw.close();
      await store.close();
    }
  });

  it('entries are written within about a second without any other call', async () => {
    const dir = freshDir();
    const store = await openSqliteStore(dir);
    const other = await openSqliteStore(dir);
    try {
      store.logFetch(fetch(1));
      await untilFetchLogged(other);
    } finally {
      await store.close();
      await other.close();
    }
  });

  it('a long User-Agent is cut to 512 characters', async () => {
    await withFreshStore(async (store) => {
      store.logFetch({ ...fetch(1), userAgent: 'x'.repeat(10_000) });
      assert.equal((await store.listFetches('example.com')).items[0]!.userAgent.length, 512);
    });
  });
});

describe('settings', () => {
  it('get, set, overwrite; unknown keys are undefined', async () => {
    await withFreshStore(async (store) => {
      assert.equal(await store.getSetting('admin.hash'), undefined);
      await store.setSetting('admin.hash', 'a');
      await store.setSetting('admin.hash', 'b');
      assert.equal(await store.getSetting('admin.hash'), 'b');
      await rejects(store.setSetting('', 'x'), 'STORE_INVALID', /^key/);
      await rejects(store.setSetting('k', 5 as unknown as string), 'STORE_INVALID', /^k:/);
    });
  });
});

describe('two connections on one database (the CLI while serve runs)', () => {
  it('each sees what the other committed', async () => {
    const dir = freshDir();
    const serve = await openSqliteStore(dir);
    const cli = await openSqliteStore(dir);
    try {
      await cli.addDomain('example.com', settings, T0);
      assert.equal((await serve.getDomain('example.com'))?.policyId, '20240501100000');
      await serve.updateDomain('example.com', { mode: 'enforce' }, T0);
      const viaCli = await cli.updateDomain('example.com', { maxAge: 86400 }, T0);
      assert.equal(viaCli.policyId, '20240501100002'); // strictly after serve's change
      const saved = await serve.saveReport(
        newReport(report('x', '2024-05-01T00:00:00Z', [policy('example.com', 1, 0)])),
        T0,
      );
      assert.deepEqual(await cli.saveReport(newReport(report('x', '2024-05-01T00:00:00Z', [])), T0), {
        id: saved.id,
        created: false,
      });
      assert.equal((await cli.listReports({ domain: 'example.com' })).items[0]?.id, saved.id);
    } finally {
      await serve.close();
      await cli.close();
    }
  });

  it('a reader is not blocked while another connection holds a write transaction (WAL)', async () => {
    const dir = freshDir();
    const store = await openSqliteStore(dir);
    await store.addDomain('example.com', settings, T0);
    const writer = new Database(join(dir, DATABASE_FILE));
    try {
      writer.exec('BEGIN IMMEDIATE');
      writer.prepare("UPDATE domains SET mode = 'enforce'").run();
      assert.equal((await store.getDomain('example.com'))?.mode, 'testing');
      writer.exec('COMMIT');
      assert.equal((await store.getDomain('example.com'))?.mode, 'enforce');
    } finally {
      writer.close();
      await store.close();
    }
  });
});

// The power-loss promise (src/store/sqlite.ts header): a SIGKILL keeps the page cache, so the crash
// test cannot see a missing fsync; these read the mode in force on the store's own connections.
describe('durability: every store connection commits in WAL mode with synchronous=FULL', () => {
  const FULL = { journalMode: 'wal', synchronous: 'FULL' };

  it('a fresh store, the same file opened again, and a second connection beside the first', async () => {
    const dir = freshDir();
    const first = await openStore(dir);
    assert.deepEqual(await first.durability(), FULL, 'fresh file');
    const second = await openStore(dir);
    try {
      assert.deepEqual(await second.durability(), FULL, 'second connection while the first is open');
      assert.deepEqual(await first.durability(), FULL, 'the first, after the second opened');
    } finally {
      await first.close();
      await second.close();
    }
    const reopened = await openStore(dir);
    try {
      assert.deepEqual(await reopened.durability(), FULL, 'existing file opened again');
    } finally {
      await reopened.close();
    }
  });

  it('FULL is back in force after each kind of fetch-log flush (those commits use NORMAL)', async () => {
    const dir = freshDir();
    const store = await openStore(dir);
    const other = await openStore(dir);
    try {
      for (let i = 0; i < 100; i++) store.logFetch(fetch(i, 'batch.example'));
      assert.equal((await other.listFetches('batch.example', { limit: 1000 })).items.length, 100);
      assert.deepEqual(await store.durability(), FULL, 'after a full batch');
      store.logFetch(fetch(1));
      await untilFetchLogged(other);
      assert.deepEqual(await store.durability(), FULL, 'after the timer flush');
      store.logFetch(fetch(2));
      await store.listFetches('example.com');
      assert.deepEqual(await store.durability(), FULL, 'after the flush before a list');
      await store.addDomain('example.com', settings, T0);
      assert.deepEqual(await store.durability(), FULL, 'after an ordinary write');
    } finally {
      await store.close();
      await other.close();
    }
  });

  it('serve and the CLI open the store only through openStore (nothing else opens mxguard.sqlite)', () => {
    const files = readdirSync('src', { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join('src', f));
    const using = (pattern: RegExp) => files.filter((f) => pattern.test(readFileSync(f, 'utf8'))).sort();
    // better-sqlite3 is opened by the store and by policyd's own cache file, nowhere else.
    assert.deepEqual(using(/new Database\(/), ['src/policyd/sqlite.ts', 'src/store/sqlite.ts']);
    assert.deepEqual(using(/\bopenSqliteStore\(/), ['src/store/index.ts', 'src/store/sqlite.ts']);
    for (const caller of ['src/server/start.ts', 'src/cli/domain.ts'])
      assert.match(readFileSync(caller, 'utf8'), /\bopenStore\(/, caller);
  });
});
