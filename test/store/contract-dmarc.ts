// The DMARC part of the store contract (src/store/dmarc-types.ts; rules in dmarc-rules.ts): a report stored
// once per organization + report id + domain (also when two instances save it at the same time), lists
// paged with totals and filters, the daily chart's outcomes, sources ranked, the PTR cache, typed refusals,
// rows deleted with their report. Run by test/store/sqlite.test.ts and test/store/postgres.test.ts; the
// SQLite migration from version 4 stays in test/store/dmarc.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DmarcRecordRow, DmarcReport } from '../../src/dmarc/report.js';
import { prepareDmarcReport } from '../../src/store/dmarc-rules.js';
import type { NewDmarcReport, PreparedDmarcReport } from '../../src/store/dmarc-types.js';
import type { Store } from '../../src/store/types.js';
import { rejectsWithStoreError } from '../helpers/store.js';
import type { OpenFixture, StoreFixture } from './contract.js';

export const NOW = new Date('2026-12-07T12:00:00Z');

export function row(
  sourceIp: string,
  count: number,
  overrides: Partial<DmarcRecordRow> = {},
): DmarcRecordRow {
  return {
    sourceIp,
    count,
    disposition: 'none',
    dkim: 'pass',
    spf: 'pass',
    headerFrom: 'example.com',
    dkimResults: [{ domain: 'example.com', selector: 's1', result: 'pass' }],
    spfResults: [{ domain: 'example.com', scope: 'mfrom', result: 'pass' }],
    reasons: [],
    ...overrides,
  };
}

export function report(reportId: string, overrides: Partial<DmarcReport> = {}): DmarcReport {
  return {
    kind: 'dmarc',
    organization: 'google.com',
    reportId,
    email: 'noreply-dmarc-support@google.com',
    begin: '2026-12-01T00:00:00.000Z',
    end: '2026-12-01T23:59:59.000Z',
    domain: 'Example.COM.',
    policyPublished: { domain: 'example.com', p: 'none', pct: 100, adkim: 'r', aspf: 'r' },
    records: [row('192.0.2.1', 10)],
    ...overrides,
  };
}

export function input(r: DmarcReport): NewDmarcReport {
  return { report: r, source: 'import', dkim: 'unverified', submitter: 'file.xml', warnings: ['w1'] };
}

/** DMARC reports as every Store keeps them; `open` gives a fresh, empty store. */
export function dmarcContract(name: string, open: OpenFixture): void {
  async function withStore(work: (store: Store, db: StoreFixture) => Promise<void>): Promise<void> {
    const fixture = await open();
    try {
      await work(fixture.store, fixture);
    } finally {
      await fixture.close();
    }
  }

  describe(`DMARC reports (${name})`, () => {
    describe('saveDmarcReport', () => {
      it('stores a report whole with its sums, and the same report again only once', async () => {
        await withStore(async (store) => {
          const r = report('r1', {
            records: [
              row('192.0.2.1', 10),
              row('192.0.2.2', 5, { dkim: 'fail', spf: 'fail', disposition: 'quarantine' }),
              row('192.0.2.3', 2, { dkim: 'fail' }),
            ],
          });
          const first = await store.saveDmarcReport(input(r), NOW);
          assert.equal(first.created, true);
          const again = await store.saveDmarcReport(input(r), NOW);
          assert.deepEqual(again, { id: first.id, created: false });

          const stored = await store.getDmarcReport(first.id);
          assert.ok(stored);
          assert.deepEqual(stored.report, r);
          assert.equal(stored.domain, 'example.com');
          assert.equal(stored.messages, 17);
          assert.equal(stored.passed, 12);
          assert.equal(stored.rows, 3);
          assert.equal(stored.submitter, 'file.xml');
          assert.deepEqual(stored.warnings, ['w1']);
          assert.equal(stored.receivedAt, NOW.toISOString());
          assert.equal((await store.listDmarcReports()).total, 1);
        });
      });

      it('keeps the same report id from the same organization for another domain apart', async () => {
        await withStore(async (store) => {
          const a = await store.saveDmarcReport(input(report('same')), NOW);
          const b = await store.saveDmarcReport(input(report('same', { domain: 'example.org' })), NOW);
          assert.equal(b.created, true);
          assert.notEqual(a.id, b.id);
          assert.equal((await store.listDmarcReports()).total, 2);
        });
      });

      it('stores the same report once when two instances save it at the same time', async () => {
        await withStore(async (store, db) => {
          const other = await db.another();
          for (let round = 0; round < 20; round++) {
            const r = report(`race-${round}`, { records: [row('192.0.2.1', 3), row('192.0.2.2', 4)] });
            const results = await Promise.all([
              store.saveDmarcReport(input(r), NOW),
              other.saveDmarcReport(input(r), NOW),
              store.saveDmarcReport(input(r), NOW),
              other.saveDmarcReport(input(r), NOW),
            ]);
            assert.deepEqual(results.map((x) => x.created).sort(), [false, false, false, true]);
            assert.equal(new Set(results.map((x) => x.id)).size, 1);
          }
          assert.equal(await db.rows('dmarc_reports'), 20);
          // Rows were written once per report, not once per caller.
          assert.equal(await db.rows('dmarc_rows'), 40);
        });
      });

      it('refuses ill-typed input with STORE_INVALID naming the field, and stores nothing', async () => {
        await withStore(async (store) => {
          const bad: Array<[DmarcReport | NewDmarcReport, RegExp]> = [
            [report('b1', { records: [row('192.0.2.1', -1)] }), /records\[0\]\.count/],
            [report('b2', { records: [row('192.0.2.1', 1.5)] }), /records\[0\]\.count/],
            [
              report('b3', { records: [row('192.0.2.1', 1, { disposition: 'drop' as never })] }),
              /disposition/,
            ],
            [report('b4', { records: [row('192.0.2.1', 1, { spf: 'PASS' as never })] }), /\.spf/],
            [report('b5', { begin: 'yesterday' }), /report\.begin/],
            [report('b6', { organization: 7 as never }), /report\.organization/],
            [
              report('b7', { records: [row('192.0.2.1', Number.MAX_SAFE_INTEGER), row('192.0.2.2', 2)] }),
              /add up/,
            ],
            [{ ...input(report('b8')), source: 'ftp' as never }, /source/],
          ];
          for (const [value, message] of bad) {
            const given = 'kind' in value ? input(value) : value;
            await rejectsWithStoreError(store.saveDmarcReport(given, NOW), 'STORE_INVALID', message);
          }
          assert.equal((await store.listDmarcReports()).total, 0);
        });
      });
      it('stores a report prepared in another thread (prepareDmarcReport) as it stores the report as read', async () => {
        await withStore(async (store) => {
          const records = [
            row('192.0.2.1', 10, { headerFrom: 'Mail.Example.COM' }),
            row('192.0.2.2', 5, { dkim: 'fail', spf: 'fail', disposition: 'reject' }),
          ];
          const asRead = report('as-read', { records });
          const prepared = report('prepared', { records });
          // Through a structured clone, as a decoder thread's reply arrives.
          const crossed = structuredClone(prepareDmarcReport(prepared));
          const a = await store.saveDmarcReport(input(asRead), NOW);
          const b = await store.saveDmarcReport({ ...input(prepared), report: crossed }, NOW);
          assert.equal(b.created, true);
          assert.deepEqual(await store.saveDmarcReport({ ...input(prepared), report: crossed }, NOW), {
            id: b.id,
            created: false,
          });
          const [storedA, storedB] = [await store.getDmarcReport(a.id), await store.getDmarcReport(b.id)];
          assert.ok(storedA && storedB);
          assert.deepEqual(storedB.report, prepared);
          const { id: _a, reportId: _ra, report: _pa, ...restA } = storedA;
          const { id: _b, reportId: _rb, report: _pb, ...restB } = storedB;
          assert.deepEqual(restB, restA);
          assert.equal(restB.messages, 15);
          assert.equal(restB.passed, 10);
          const sources = await store.dmarcSources({ domain: 'example.com' });
          // Both reports' rows: each source counted twice, with the header_from stored as a domain key.
          assert.deepEqual(
            sources.items.map((x) => [x.sourceIp, x.messages, x.headerFrom]),
            [
              ['192.0.2.1', 20, ['mail.example.com']],
              ['192.0.2.2', 10, ['example.com']],
            ],
          );
        });
      });

      it('refuses a prepared report that is not one prepareDmarcReport makes, and stores nothing', async () => {
        await withStore(async (store) => {
          const good = prepareDmarcReport(
            report('p', { records: [row('192.0.2.1', 1), row('192.0.2.2', 2)] }),
          );
          const bad: Array<[PreparedDmarcReport, RegExp]> = [
            [{ ...good, rows: { ...good.rows, count: [1] } }, /rows\.count/],
            [{ ...good, rows: { ...good.rows, disposition: ['none', 'drop'] } }, /rows\[1\]/],
            [{ ...good, rows: { ...good.rows, count: [1, -2] } }, /rows\[1\]/],
            [{ ...good, messages: 1.5 }, /report\.messages/],
            [{ ...good, json: undefined as never }, /report\.json/],
            [{ ...good, rows: undefined as never }, /report\.rows/],
          ];
          for (const [prepared, message] of bad) {
            await rejectsWithStoreError(
              store.saveDmarcReport({ ...input(report('p')), report: prepared }, NOW),
              'STORE_INVALID',
              message,
            );
          }
          assert.equal((await store.listDmarcReports()).total, 0);
        });
      });
    });

    describe('listDmarcReports', () => {
      it('pages newest first with the total, and filters by domain, reporter, source IP, disposition and time', async () => {
        await withStore(async (store) => {
          for (let i = 0; i < 25; i++) {
            const day = String(1 + (i % 28)).padStart(2, '0');
            await store.saveDmarcReport(
              input(
                report(`p${i}`, {
                  organization: i % 2 === 0 ? 'google.com' : 'yahoo.com',
                  domain: i < 20 ? 'example.com' : 'example.org',
                  begin: `2026-11-${day}T00:00:00.000Z`,
                  records: [row(`192.0.2.${i}`, 1, { disposition: i % 5 === 0 ? 'reject' : 'none' })],
                }),
              ),
              NOW,
            );
          }
          const seen: string[] = [];
          let cursor: string | undefined;
          let pages = 0;
          do {
            const page = await store.listDmarcReports({ limit: 10, cursor });
            assert.equal(page.total, 25);
            seen.push(...page.items.map((x) => x.reportId));
            cursor = page.nextCursor ?? undefined;
            pages++;
          } while (cursor);
          assert.equal(pages, 3);
          assert.equal(new Set(seen).size, 25);
          assert.equal(seen[0], 'p24'); // begins on 2026-11-25, the latest
          assert.equal(seen[24], 'p0');

          assert.equal((await store.listDmarcReports({ domain: 'EXAMPLE.org' })).total, 5);
          assert.equal((await store.listDmarcReports({ organization: 'yahoo.com' })).total, 12);
          const byIp = await store.listDmarcReports({ sourceIp: '192.0.2.7' });
          assert.deepEqual(
            byIp.items.map((x) => x.reportId),
            ['p7'],
          );
          assert.equal((await store.listDmarcReports({ disposition: 'reject' })).total, 5);
          const range = await store.listDmarcReports({ since: '2026-11-10', until: '2026-11-12' });
          assert.deepEqual(range.items.map((x) => x.reportId).sort(), ['p10', 'p11', 'p9']);
        });
      });

      it("refuses another list's cursor and a bad disposition", async () => {
        await withStore(async (store) => {
          await store.saveReport(
            {
              report: {
                organization: 'o',
                reportId: 't1',
                start: '2026-12-01T00:00:00Z',
                end: '2026-12-02T00:00:00Z',
                policies: [],
              },
              source: 'import',
              dkim: 'unverified',
              warnings: [],
            },
            NOW,
          );
          await store.saveReport(
            {
              report: {
                organization: 'o',
                reportId: 't2',
                start: '2026-12-01T00:00:00Z',
                end: '2026-12-02T00:00:00Z',
                policies: [],
              },
              source: 'import',
              dkim: 'unverified',
              warnings: [],
            },
            NOW,
          );
          const tlsPage = await store.listReports({ limit: 1 });
          assert.ok(tlsPage.nextCursor);
          await rejectsWithStoreError(
            store.listDmarcReports({ cursor: tlsPage.nextCursor }),
            'STORE_INVALID',
            /dmarcReports/,
          );
          await rejectsWithStoreError(
            store.listDmarcReports({ disposition: 'drop' as never }),
            'STORE_INVALID',
            /disposition/,
          );
        });
      });

      it('lists a report that names no policy domain under the domain ""', async () => {
        await withStore(async (store) => {
          await store.saveDmarcReport(input(report('nodomain', { domain: '' })), NOW);
          const page = await store.listDmarcReports({ domain: '' });
          assert.deepEqual(
            page.items.map((x) => [x.reportId, x.domain]),
            [['nodomain', '']],
          );
        });
      });
    });

    describe('dashboard queries', () => {
      it('counts messages per day by outcome: pass first, then by disposition', async () => {
        await withStore(async (store) => {
          await store.saveDmarcReport(
            input(
              report('d1', {
                records: [
                  row('192.0.2.1', 10),
                  row('192.0.2.2', 3, { dkim: 'fail' }), // SPF aligned: still a pass
                  row('192.0.2.3', 4, { dkim: 'fail', spf: 'fail' }),
                  row('192.0.2.4', 5, { dkim: 'fail', spf: 'fail', disposition: 'quarantine' }),
                  row('192.0.2.5', 6, { dkim: 'fail', spf: 'fail', disposition: 'reject' }),
                  row('192.0.2.6', 7, { disposition: 'quarantine' }), // passed, quarantined anyway
                ],
              }),
            ),
            NOW,
          );
          await store.saveDmarcReport(
            input(report('d2', { begin: '2026-12-02T06:00:00.000Z', records: [row('192.0.2.1', 1)] })),
            NOW,
          );
          await store.saveDmarcReport(input(report('d3', { domain: 'other.example' })), NOW);
          assert.deepEqual(await store.dmarcDailyCounts('example.com', '2026-11-01', '2026-12-31'), [
            { day: '2026-12-01', pass: 20, fail: 4, quarantined: 5, rejected: 6 },
            { day: '2026-12-02', pass: 1, fail: 0, quarantined: 0, rejected: 0 },
          ]);
          assert.deepEqual(await store.dmarcDailyCounts('example.com', '2026-12-02', '2026-12-02'), [
            { day: '2026-12-02', pass: 1, fail: 0, quarantined: 0, rejected: 0 },
          ]);
        });
      });

      it('ranks sources by messages with alignment and cached reverse DNS, paged with the total', async () => {
        await withStore(async (store) => {
          await store.saveDmarcReport(
            input(
              report('s1', {
                records: [
                  row('192.0.2.1', 10, { headerFrom: 'example.com' }),
                  row('192.0.2.1', 5, { dkim: 'fail', headerFrom: 'mail.example.com' }),
                  row('198.51.100.7', 30, { dkim: 'fail', spf: 'fail' }),
                  row('203.0.113.9', 2, { spf: 'fail' }),
                ],
              }),
            ),
            NOW,
          );
          await store.saveDmarcReport(
            input(report('s2', { organization: 'yahoo.com', records: [row('203.0.113.9', 13)] })),
            NOW,
          );
          await store.setPtrName('192.0.2.1', 'mail.example.com', NOW);
          await store.setPtrName('198.51.100.7', '', NOW);

          const all = await store.dmarcSources({ domain: 'example.com' });
          assert.equal(all.total, 3);
          assert.deepEqual(all.items, [
            {
              sourceIp: '198.51.100.7',
              messages: 30,
              spfAligned: 0,
              dkimAligned: 0,
              dmarcPass: 0,
              headerFrom: ['example.com'],
            },
            {
              sourceIp: '192.0.2.1',
              messages: 15,
              spfAligned: 15,
              dkimAligned: 10,
              dmarcPass: 15,
              headerFrom: ['example.com', 'mail.example.com'],
              ptr: 'mail.example.com',
            },
            {
              sourceIp: '203.0.113.9',
              messages: 15,
              spfAligned: 13,
              dkimAligned: 15,
              dmarcPass: 15,
              headerFrom: ['example.com'],
            },
          ]);

          const first = await store.dmarcSources({ domain: 'example.com', limit: 2 });
          assert.ok(first.nextCursor);
          const second = await store.dmarcSources({
            domain: 'example.com',
            limit: 2,
            cursor: first.nextCursor,
          });
          assert.deepEqual(
            [...first.items, ...second.items].map((s) => s.sourceIp),
            all.items.map((s) => s.sourceIp),
          );
          assert.equal(second.nextCursor, null);

          const failing = await store.dmarcSources({ domain: 'example.com', verdict: 'fail' });
          assert.deepEqual(
            failing.items.map((s) => [s.sourceIp, s.messages]),
            [['198.51.100.7', 30]],
          );

          const names = await store.getPtrNames(['192.0.2.1', '198.51.100.7', '203.0.113.9']);
          assert.deepEqual([...names.keys()].sort(), ['192.0.2.1', '198.51.100.7']);
          assert.equal(names.get('198.51.100.7')?.name, '');
          assert.equal(names.get('192.0.2.1')?.at, NOW.toISOString());
          await rejectsWithStoreError(
            store.setPtrName('192.0.2.1', 'x'.repeat(256), NOW),
            'STORE_INVALID',
            /name/,
          );
        });
      });

      it('keeps any text as given, NUL and U+FFFE included, and finds it by it', async () => {
        await withStore(async (store) => {
          const odd = 'Org\u0000\uFFFE0 \uFFFE\uFFFE';
          const r = report('nul\u0000id', {
            organization: odd,
            records: [
              row('192.0.2.1\u0000\uFFFE0', 2, { reasons: [{ type: 'other', comment: 'a\u0000b' }] }),
            ],
          });
          const { id } = await store.saveDmarcReport(input(r), NOW);
          assert.deepEqual((await store.getDmarcReport(id))?.report, r);
          // Found by its exact text (list views read text clipped; SQLite's substr stops at a NUL).
          const listed = await store.listDmarcReports({ organization: odd });
          assert.deepEqual(
            listed.items.map((x) => x.id),
            [id],
          );
          assert.deepEqual(
            (await store.dmarcSources({ domain: 'example.com' })).items.map((x) => x.sourceIp),
            ['192.0.2.1\u0000\uFFFE0'],
          );
          assert.equal((await store.saveDmarcReport(input(r), NOW)).created, false);
        });
      });

      it('deletes reports with their rows', async () => {
        await withStore(async (store) => {
          const a = await store.saveDmarcReport(input(report('x1')), NOW);
          const b = await store.saveDmarcReport(input(report('x2', { records: [row('192.0.2.9', 4)] })), NOW);
          assert.deepEqual(await store.deleteDmarcReports([a.id, a.id, 999_999]), [a.id]);
          const sources = await store.dmarcSources({ domain: 'example.com' });
          assert.deepEqual(
            sources.items.map((s) => s.sourceIp),
            ['192.0.2.9'],
          );
          assert.equal(await store.getDmarcReport(a.id), undefined);
          assert.ok(await store.getDmarcReport(b.id));
        });
      });
    });
  });
}
