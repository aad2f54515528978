// The store contract: what every Store implementation (src/store/types.ts) does, whatever holds the
// data. Each implementation's test file runs it with a function that opens a fresh, empty store:
//   storeContract('sqlite', () => openSqliteStore(freshDir()));
// Domains and policy ids, reports (idempotent saves, list pages and filters, detail, deletion, purging,
// dashboard queries), rejected input, the policy fetch log, authentication (contract-auth.ts), settings.
// Monitoring (contract-monitor.ts) and DMARC reports (contract-dmarc.ts) are contract parts of their own.
// What only one implementation has (SQLite's files and WAL, legacy rows written with SQL, several
// instances on one database) stays in that implementation's tests.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CLIP_MARK, LIST_TEXT_MAX } from '../../src/store/paging.js';
import type { DomainSettings, NewReport, Store } from '../../src/store/types.js';
import type { TlsFailure, TlsPolicyResult, TlsReport } from '../../src/tlsrpt/report.js';
import { rejectsWithStoreError } from '../helpers/store.js';
import { authContract } from './contract-auth.js';

const rejects = rejectsWithStoreError;

/**
 * A fresh, empty store for the contract parts that need more than the Store: another instance on the
 * same database, and raw row counts (both stores share table and column names).
 */
export interface StoreFixture {
  store: Store;
  /** Another store on the same database, as another process or `serve` instance opens it. */
  another(): Promise<Store>;
  /** Rows of `table` matching the SQL condition `where`. */
  rows(table: string, where?: string): Promise<number>;
  /** The first column of the rows an SQL query returns. */
  column(sql: string): Promise<unknown[]>;
  /** Closes the store and every other instance opened through `another`. */
  close(): Promise<void>;
}
export type OpenFixture = () => Promise<StoreFixture>;
const MIB = 1024 * 1024;

export const T0 = new Date('2024-05-01T10:00:00Z');
export const later = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
export const settings: DomainSettings = {
  mode: 'testing',
  mx: ['mail.example.com'],
  maxAge: 604800,
  rua: ['mailto:tlsrpt@example.com'],
};

export function policy(
  domain: string,
  successful: number,
  failed: number,
  failures: TlsFailure[] = [],
): TlsPolicyResult {
  return { type: 'sts', domain, policyStrings: [], mxHosts: [], successful, failed, failures };
}

export function report(
  reportId: string,
  start: string,
  policies: TlsPolicyResult[],
  organization = 'Sender A',
): TlsReport {
  return { organization, reportId, start, end: '2024-05-31T23:59:59Z', policies };
}

export function newReport(r: TlsReport, extra: Partial<NewReport> = {}): NewReport {
  return { report: r, source: 'https', dkim: 'none', warnings: [], ...extra };
}

export const HOUR = 3_600_000;
export const FROM = Date.parse('2024-05-01T00:00:00Z');

/** `n` reports about `domain`; three share each start hour, so the id breaks ties. */
export async function many(store: Store, n: number, prefix: string, domain = 'example.com', from = FROM) {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = new Date(from + Math.floor(i / 3) * HOUR).toISOString();
    const r = report(`${prefix}${i}`, start, [policy(domain, 10, 1, [{ resultType: 'x', count: 1 }])]);
    ids.push((await store.saveReport(newReport(r), T0)).id);
  }
  return ids;
}

export async function allPages(store: Store, filter: Parameters<Store['listReports']>[0] = {}) {
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
export const fetch = (i: number, domain = 'example.com') => ({
  at: later(i).toISOString(),
  domain,
  clientIp: `192.0.2.${i % 250}`,
  userAgent: `agent ${i}`,
});

export function storeContract(name: string, open: () => Promise<Store>): void {
  /** Runs `work` on a fresh, empty store, closed afterwards. */
  async function withFreshStore(work: (store: Store) => Promise<void>): Promise<void> {
    const store = await open();
    try {
      await work(store);
    } finally {
      await store.close();
    }
  }

  describe(`store contract: ${name}`, () => {
    describe('opening', () => {
      it('a closed store refuses calls', async () => {
        const store = await open();
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
          await rejects(
            store.addDomain('exa_mple.com', settings, T0),
            'STORE_INVALID',
            /domain "exa_mple.com"/,
          );
          await rejects(
            store.addDomain('other.com', { ...settings, maxAge: 31557601 }, T0),
            'STORE_INVALID',
            /^maxAge/,
          );
          await rejects(
            store.addDomain('other.com', { ...settings, mx: ['a b'] }, T0),
            'STORE_INVALID',
            /^mx:/,
          );
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
          for (const name of ['b.example', 'c.example', 'a.example'])
            await store.addDomain(name, settings, T0);
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
            await store.updateDomain(
              'example.com',
              { mode: 'testing', mx: ['MAIL.example.com.'] },
              later(10),
            ),
            d,
          );
          const r = await store.updateDomain(
            'example.com',
            { rua: ['https://r.example.com/tlsrpt'] },
            later(20),
          );
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
          await rejects(
            store.updateDomain('example.com', { mx: [] }, T0),
            'STORE_INVALID',
            /^mx: mode testing/,
          );
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
          const again = await store.saveReport(
            newReport({ ...r1, policies: [] }, { source: 'smtp' }),
            later(5),
          );
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
            report: {
              ...n.report,
              policies: [policy('a.example', 0, 0, [{ resultType: 'x', count: 2 ** 60 }])],
            },
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
        [
          'policies not a list',
          (n) => ({ ...n, report: { ...n.report, policies: {} } }),
          /^report\.policies/,
        ],
        [
          'no organization',
          (n) => ({ ...n, report: { ...n.report, organization: undefined } }),
          /organization/,
        ],
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
        ['by sending organization', { organization: 'Sender A' }, ['r3', 'r1']],
        ['an organization is matched exactly', { organization: 'sender a' }, []],
        ['organization and domain together', { organization: 'Sender B', domain: 'other.org' }, ['r2']],
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
        // until: before the end of that day (a date) or that time
        [
          'resultType',
          '..2024-05-01T06:00:00Z',
          [
            ['certificate-expired', 5],
            ['starttls-not-supported', 2],
          ],
        ],
        ['organization', '..2024-04-30', []],
        [
          'organization',
          '2024-05-01..2024-05-01',
          [
            ['Sender A', 7],
            ['Sender B', 3],
          ],
        ],
      ];
      for (const [by, range, expected] of breakdowns) {
        it(`failureBreakdown by ${by}${range ? ` in ${range}` : ''}`, async () => {
          await seeded(async (store) => {
            // "since", "..until" or "since..until"
            const [since, until] = range?.includes('..') ? range.split('..') : [range, undefined];
            const rows = await store.failureBreakdown('example.com', by, since || undefined, until);
            assert.deepEqual(
              rows.map((r) => [r.key, r.count]),
              expected,
            );
          });
        });
      }

      it('failureBreakdown refuses an unknown key', async () => {
        await seeded(async (store) => {
          await rejects(
            store.failureBreakdown('example.com', 'country' as 'resultType'),
            'STORE_INVALID',
            /^by/,
          );
        });
      });
    });

    describe('reports: pages, clipped list values, deletion, purging', () => {
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

      it('deleteReports removes reports with their policies and failures; the daily counts and breakdowns follow', async () => {
        await withFreshStore(async (store) => {
          const [a, b, c] = await many(store, 3, 'd');
          const before = await store.dailyCounts('example.com', '2024-05-01', '2024-05-01');
          assert.deepEqual(before, [{ day: '2024-05-01', successful: 30, failed: 3 }]);
          assert.deepEqual(await store.deleteReports([a!, c!, 999_999, a!]), [a!, c!]);
          assert.deepEqual(await store.dailyCounts('example.com', '2024-05-01', '2024-05-01'), [
            { day: '2024-05-01', successful: 10, failed: 1 },
          ]);
          assert.deepEqual(await store.failureBreakdown('example.com', 'resultType'), [
            { key: 'x', count: 1 },
          ]);
          assert.deepEqual(
            (await store.listReports()).items.map((r) => r.id),
            [b],
          );
          assert.deepEqual(await store.deleteReports([]), []);
          await rejects(store.deleteReports([1.5]), 'STORE_INVALID', /^id/);
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
          assert.deepEqual(
            await store.purgeReports({ domain: 'example.com', before: '2024-05-02', limit: 5 }),
            {
              deleted: 5,
              remaining: 7,
            },
          );
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

      it('a long User-Agent is cut to 512 characters', async () => {
        await withFreshStore(async (store) => {
          store.logFetch({ ...fetch(1), userAgent: 'x'.repeat(10_000) });
          assert.equal((await store.listFetches('example.com')).items[0]!.userAgent.length, 512);
        });
      });
    });

    authContract(withFreshStore);

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
  });
}
