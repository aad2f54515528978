// The monitoring part of the store contract (src/store/monitor-types.ts): check runs with bounded findings
// stored once each, one open alert per key (also when two instances record at once), deliveries, pages,
// purging, domains removed with their history, watch-only domains. Run by test/store/sqlite.test.ts and
// test/store/postgres.test.ts; what only one store has (SQLite's triggers, racing processes, upgrades of
// older files) stays in test/store/monitor.test.ts and the store's own test file.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type AlertEvent,
  type CheckOutcome,
  MAX_DELIVERY_ERROR,
  MAX_RECENT_CHECK_RUNS,
  MAX_STORED_FINDING_TEXT,
  MAX_STORED_FINDINGS,
  MAX_STORED_FINDINGS_BYTES,
  type NewAlert,
  type NewCheckRun,
  type NewDelivery,
  type StoredFinding,
} from '../../src/store/monitor-types.js';
import { CLIP_MARK, LIST_PAGE_MAX_BYTES, LIST_TEXT_MAX } from '../../src/store/paging.js';
import type { DomainSettings, Store } from '../../src/store/types.js';
import { rejectsWithStoreError } from '../helpers/store.js';
import type { OpenFixture, StoreFixture } from './contract.js';

export const T0 = new Date('2026-06-01T12:00:00Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const at = (ms: number) => new Date(T0.getTime() + ms);
export const SETTINGS: DomainSettings = {
  mode: 'testing',
  mx: ['mx1.example.com'],
  maxAge: 86400,
  rua: ['mailto:tlsrpt@example.com'],
};

export function finding(code: string, status = 'fail', extra: Partial<StoredFinding> = {}): StoredFinding {
  return { section: 'tls', status, code, message: `${code} happened`, ...extra };
}

export function run(
  when: Date,
  findings: StoredFinding[] = [],
  extra: Partial<NewCheckRun> = {},
): NewCheckRun {
  return {
    domain: 'example.com',
    at: when.toISOString(),
    durationMs: 1200,
    status: findings.some((f) => f.status === 'fail') ? 'fail' : 'pass',
    findings,
    trigger: 'schedule',
    ...extra,
  };
}

export function alert(code: string, subject = '', domain = 'example.com'): NewAlert {
  return {
    domain,
    code,
    subject,
    severity: 'fail',
    message: `${code} on ${subject || domain}`,
    fix: 'do it',
  };
}

export function event(kind: AlertEvent['event'], code: string, when: Date): AlertEvent {
  return {
    event: kind,
    domain: 'example.com',
    code,
    severity: 'fail',
    message: code,
    openedAt: when.toISOString(),
  };
}

export function webhook(kind: AlertEvent['event'], code: string, when: Date): NewDelivery {
  return { channel: 'webhook', target: 'https://hooks.example/x', event: event(kind, code, when) };
}

/** One check: the run, opening `open` (each with one webhook) and resolving `resolve` (each with one). */
export function outcome(
  when: Date,
  open: NewAlert[] = [],
  resolve: number[] = [],
  r = run(when),
): CheckOutcome {
  return {
    run: r,
    open: open.map((a) => ({ alert: a, deliveries: [webhook('alert.opened', a.code, when)] })),
    resolve: resolve.map((alertId) => ({ alertId, deliveries: [webhook('alert.resolved', 'x', when)] })),
  };
}

const rejects = rejectsWithStoreError;

/** Monitoring as every Store does it; `open` gives a fresh store (domains example.com and other.example are added here). */
export function monitorContract(name: string, open: OpenFixture): void {
  /** A fresh store holding example.com and other.example; closed (with any other instance) afterwards. */
  async function withStore(work: (store: Store, db: StoreFixture) => Promise<void>): Promise<void> {
    const fixture = await open();
    try {
      await fixture.store.addDomain('example.com', SETTINGS, T0);
      await fixture.store.addDomain('other.example', SETTINGS, T0);
      await work(fixture.store, fixture);
    } finally {
      await fixture.close();
    }
  }

  describe(`monitoring (${name})`, () => {
    describe('recordCheck', () => {
      it('writes the run, the alerts it opens and their deliveries; the run reads back whole', async () => {
        await withStore(async (store) => {
          const findings = [
            finding('starttls-failed', 'fail', { host: 'mx1.example.com', fix: 'enable STARTTLS' }),
            finding('dane-missing', 'warn'),
            finding('mx-present', 'pass'),
            finding('note', 'info'),
          ];
          const { runId, opened } = await store.recordCheck(
            outcome(
              T0,
              [alert('starttls-failed', 'mx1.example.com')],
              [],
              run(T0, findings, { trigger: 'manual' }),
            ),
            T0,
          );
          assert.equal(opened.length, 1);
          assert.deepEqual(await store.getCheckRun(runId), {
            id: runId,
            domain: 'example.com',
            at: T0.toISOString(),
            durationMs: 1200,
            status: 'fail',
            trigger: 'manual',
            findings,
          });
          assert.deepEqual((await store.listCheckRuns('example.com')).items[0]?.counts, {
            pass: 1,
            warn: 1,
            fail: 1,
          });
          assert.deepEqual(await store.openAlerts(), [
            {
              id: opened[0],
              domain: 'example.com',
              code: 'starttls-failed',
              subject: 'mx1.example.com',
              severity: 'fail',
              message: 'starttls-failed on mx1.example.com',
              fix: 'do it',
              openedAt: T0.toISOString(),
              openedBy: runId,
            },
          ]);
          const deliveries = await store.dueDeliveries(T0, 10);
          assert.equal(deliveries.length, 1);
          assert.deepEqual(deliveries[0], {
            id: deliveries[0]!.id,
            alertId: opened[0],
            channel: 'webhook',
            target: 'https://hooks.example/x',
            event: event('alert.opened', 'starttls-failed', T0),
            state: 'pending',
            attempts: 0,
            createdAt: T0.toISOString(),
            nextAttemptAt: T0.toISOString(),
          });
        });
      });

      it('keeps any text as given, NUL and U+FFFE included', async () => {
        await withStore(async (store) => {
          const odd = 'bad\u0000answer \uFFFE0\uFFFE';
          const findings = [finding('odd', 'fail', { message: odd, answer: odd })];
          const o = outcome(T0, [{ ...alert('odd', odd), message: odd }], [], run(T0, findings));
          o.open[0]!.deliveries[0]!.event.message = odd;
          const { runId } = await store.recordCheck(o, T0);
          assert.deepEqual((await store.getCheckRun(runId))?.findings, findings);
          const [opened] = await store.openAlerts();
          assert.deepEqual([opened?.subject, opened?.message], [odd, odd]);
          assert.equal((await store.dueDeliveries(T0, 1))[0]?.event.message, odd);
          assert.deepEqual((await store.recordCheck(o, T0)).opened, [], 'the same key is found open');
        });
      });

      it('a run that could not check keeps its error; getCheckRun of an unknown id is undefined', async () => {
        await withStore(async (store) => {
          const { runId } = await store.recordCheck(
            outcome(T0, [], [], run(T0, [], { status: 'error', error: 'resolver unreachable' })),
            T0,
          );
          const stored = await store.getCheckRun(runId);
          assert.equal(stored?.status, 'error');
          assert.equal(stored?.error, 'resolver unreachable');
          assert.equal(await store.getCheckRun(runId + 1), undefined);
          assert.equal(await store.getCheckRun(Number.NaN), undefined);
        });
      });

      it('skips an alert key that is already open (and its deliveries); after resolution it opens again', async () => {
        await withStore(async (store, db) => {
          const first = await store.recordCheck(outcome(T0, [alert('a', 'mx1'), alert('b')]), T0);
          assert.equal(first.opened.length, 2);
          const again = await store.recordCheck(
            outcome(at(HOUR), [alert('a', 'mx1'), alert('a', 'mx2')]),
            at(HOUR),
          );
          assert.equal(again.opened.length, 1, 'only the new subject mx2 opens');
          assert.equal(await db.rows('deliveries'), 3);
          const resolved = await store.recordCheck(
            outcome(at(2 * HOUR), [], [first.opened[0]!]),
            at(2 * HOUR),
          );
          const alertA = (await store.listAlerts({ state: 'resolved' })).items[0]!;
          assert.equal(alertA.id, first.opened[0]);
          assert.equal(alertA.resolvedAt, at(2 * HOUR).toISOString());
          assert.equal(alertA.resolvedBy, resolved.runId);
          const reopened = await store.recordCheck(outcome(at(3 * HOUR), [alert('a', 'mx1')]), at(3 * HOUR));
          assert.equal(reopened.opened.length, 1);
          assert.notEqual(reopened.opened[0], first.opened[0]);
          assert.equal((await store.openAlerts('example.com')).length, 3);
        });
      });

      it('the same key twice in one outcome opens once', async () => {
        await withStore(async (store) => {
          const { opened } = await store.recordCheck(outcome(T0, [alert('a', 'mx1'), alert('a', 'mx1')]), T0);
          assert.equal(opened.length, 1);
        });
      });

      it('resolves only open alerts of the run’s domain, once, with deliveries only for those', async () => {
        await withStore(async (store, db) => {
          const mine = await store.recordCheck(outcome(T0, [alert('a')]), T0);
          const theirs = await store.recordCheck(
            outcome(T0, [alert('a', '', 'other.example')], [], run(T0, [], { domain: 'other.example' })),
            T0,
          );
          await store.recordCheck(
            outcome(at(HOUR), [], [mine.opened[0]!, theirs.opened[0]!, 999_999]),
            at(HOUR),
          );
          assert.deepEqual(
            (await store.openAlerts()).map((a) => a.domain),
            ['other.example'],
          );
          await store.recordCheck(outcome(at(2 * HOUR), [], [mine.opened[0]!]), at(2 * HOUR));
          assert.equal(
            (await store.listAlerts({ state: 'resolved' })).items[0]?.resolvedAt,
            at(HOUR).toISOString(),
          );
          assert.equal(await db.rows('deliveries', `event LIKE '%alert.resolved%'`), 1);
        });
      });

      it('refuses a run of a domain that is not configured, writing nothing', async () => {
        await withStore(async (store, db) => {
          await rejects(
            store.recordCheck(outcome(T0, [], [], run(T0, [], { domain: 'nobody.example' })), T0),
            'STORE_DOMAIN_UNKNOWN',
          );
          assert.equal(await db.rows('check_runs'), 0);
        });
      });

      it('refuses malformed input with STORE_INVALID, writing nothing', async () => {
        await withStore(async (store, db) => {
          const bad: Array<[string, CheckOutcome]> = [
            ['at', outcome(T0, [], [], run(T0, [], { at: 'yesterday' }))],
            ['status', outcome(T0, [], [], run(T0, [], { status: 'great' as 'pass' }))],
            ['trigger', outcome(T0, [], [], run(T0, [], { trigger: 'cron' as 'schedule' }))],
            ['durationMs', outcome(T0, [], [], run(T0, [], { durationMs: -1 }))],
            ['findings', outcome(T0, [], [], run(T0, [{ section: 'tls' } as StoredFinding]))],
            ['severity', outcome(T0, [{ ...alert('a'), severity: 'panic' as 'fail' }])],
            ['domain', outcome(T0, [alert('a', '', 'other.example')])],
            [
              'channel',
              { ...outcome(T0), open: [{ alert: alert('a'), deliveries: [{ channel: 'sms' } as never] }] },
            ],
            ['alertId', { ...outcome(T0), resolve: [{ alertId: 1.5, deliveries: [] }] }],
          ];
          for (const [what, o] of bad)
            await rejects(store.recordCheck(o, T0), 'STORE_INVALID', new RegExp(what));
          assert.equal(await db.rows('check_runs'), 0);
          assert.equal(await db.rows('alerts'), 0);
        });
      });
    });

    describe('one open alert per key', () => {});

    describe('bounds on a run’s findings', () => {
      it(`keeps at most ${MAX_STORED_FINDINGS} findings, counting every one and how many were left out`, async () => {
        await withStore(async (store) => {
          const many = Array.from({ length: MAX_STORED_FINDINGS + 100 }, (_, i) =>
            finding(`f${i}`, i % 2 ? 'warn' : 'fail'),
          );
          const { runId } = await store.recordCheck(outcome(T0, [], [], run(T0, many)), T0);
          const stored = await store.getCheckRun(runId);
          assert.equal(stored?.findings.length, MAX_STORED_FINDINGS);
          assert.deepEqual(
            stored?.findings.at(-1),
            many[MAX_STORED_FINDINGS - 1],
            'the first ones, in order',
          );
          assert.equal(stored?.omittedFindings, 100);
          const summary = (await store.listCheckRuns('example.com')).items[0]!;
          assert.deepEqual(summary.counts, { pass: 0, warn: 300, fail: 300 });
          assert.equal(summary.omittedFindings, 100);
        });
      });

      it(`clips every text at ${MAX_STORED_FINDING_TEXT} characters, drops unknown fields, and caps the JSON`, async () => {
        await withStore(async (store) => {
          const long = 'x'.repeat(MAX_STORED_FINDING_TEXT * 3);
          const hostile = Array.from(
            { length: MAX_STORED_FINDINGS },
            (_, i) =>
              ({
                ...finding(`f${i}`),
                message: long,
                fix: long,
                answer: long,
                host: long,
                extra: long,
              }) as StoredFinding,
          );
          const { runId } = await store.recordCheck(outcome(T0, [], [], run(T0, hostile)), T0);
          const stored = (await store.getCheckRun(runId))!;
          const first = stored.findings[0]!;
          assert.equal(first.message.length, MAX_STORED_FINDING_TEXT);
          assert.ok(first.message.endsWith(CLIP_MARK));
          assert.equal(first.fix?.length, MAX_STORED_FINDING_TEXT);
          assert.equal('extra' in first, false);
          const bytes = Buffer.byteLength(JSON.stringify(stored.findings));
          assert.ok(bytes <= MAX_STORED_FINDINGS_BYTES, `${bytes} bytes stored`);
          assert.ok(stored.findings.length > 0 && stored.findings.length < MAX_STORED_FINDINGS);
          assert.equal(stored.omittedFindings, MAX_STORED_FINDINGS - stored.findings.length);
        });
      });

      it('never cuts a character in half', async () => {
        await withStore(async (store) => {
          const emoji = '😀'.repeat(MAX_STORED_FINDING_TEXT);
          const { runId } = await store.recordCheck(
            outcome(T0, [], [], run(T0, [finding('e', 'fail', { message: emoji })])),
            T0,
          );
          const message = (await store.getCheckRun(runId))!.findings[0]!.message;
          assert.ok(message.length <= MAX_STORED_FINDING_TEXT);
          assert.equal(Buffer.from(message).toString(), message, 'no lone surrogate');
        });
      });

      it('clips the alert’s and the event’s text as well', async () => {
        await withStore(async (store) => {
          const long = 'y'.repeat(MAX_STORED_FINDING_TEXT + 10);
          const o = outcome(T0, [{ ...alert('a'), message: long, fix: long }]);
          o.open[0]!.deliveries[0]!.event.message = long;
          await store.recordCheck(o, T0);
          const [stored] = await store.openAlerts();
          assert.equal(stored?.message.length, MAX_STORED_FINDING_TEXT);
          assert.equal(stored?.fix?.length, MAX_STORED_FINDING_TEXT);
          assert.equal((await store.dueDeliveries(T0, 1))[0]?.event.message.length, MAX_STORED_FINDING_TEXT);
        });
      });
    });

    describe('findings stored once', () => {
      it('a finding seen by many runs is stored once; each run reads back its own list, in order', async () => {
        await withStore(async (store, db) => {
          const a = finding('a', 'pass');
          const b = finding('b', 'warn');
          const c = finding('c', 'fail');
          const r1 = await store.recordCheck(outcome(T0, [], [], run(T0, [a, b])), T0);
          const r2 = await store.recordCheck(outcome(at(HOUR), [], [], run(at(HOUR), [b, a, c])), at(HOUR));
          const r3 = await store.recordCheck(
            outcome(T0, [], [], run(T0, [a, a], { domain: 'other.example' })),
            at(2 * HOUR),
          );
          assert.equal(await db.rows('findings'), 3);
          assert.deepEqual((await store.getCheckRun(r1.runId))?.findings, [a, b]);
          assert.deepEqual((await store.getCheckRun(r2.runId))?.findings, [b, a, c]);
          assert.deepEqual((await store.getCheckRun(r3.runId))?.findings, [a, a]);
        });
      });

      it('purging sweeps the findings no run holds any more, keeping those of held and newer runs', async () => {
        await withStore(async (store, db) => {
          const day = (d: number) => at(d * DAY);
          const [heldOnly, shared, gone, fresh] = ['held-only', 'shared', 'gone', 'fresh'].map((c) =>
            finding(c),
          );
          const held = await store.recordCheck(
            outcome(day(0), [alert('a')], [], run(day(0), [heldOnly!, shared!])),
            day(0),
          );
          for (let d = 1; d < 4; d++)
            await store.recordCheck(outcome(day(d), [], [], run(day(d), [gone!])), day(d));
          const recent = await store.recordCheck(
            outcome(day(100), [], [], run(day(100), [shared!, fresh!])),
            day(100),
          );
          assert.deepEqual(await store.purgeCheckRuns({ before: day(50).toISOString(), limit: 10 }), {
            deleted: 3,
            remaining: 0,
          });
          assert.deepEqual(
            await db.column('SELECT json FROM findings ORDER BY id'),
            [heldOnly, shared, fresh].map((f) => JSON.stringify(f)),
          );
          assert.deepEqual((await store.getCheckRun(held.runId))?.findings, [heldOnly, shared]);
          assert.deepEqual((await store.getCheckRun(recent.runId))?.findings, [shared, fresh]);
        });
      });
    });

    describe('history pages', () => {
      it('listCheckRuns pages newest first without repeats or gaps, with the total', async () => {
        await withStore(async (store) => {
          for (let i = 0; i < 25; i++) await store.recordCheck(outcome(at(i * HOUR)), at(i * HOUR));
          await store.recordCheck(outcome(T0, [], [], run(T0, [], { domain: 'other.example' })), T0);
          const seen: string[] = [];
          let cursor: string | undefined;
          let arrived = 0;
          do {
            const page = await store.listCheckRuns('EXAMPLE.com.', { limit: 10, cursor });
            assert.equal(page.total, 25 + arrived);
            seen.push(...page.items.map((r) => r.at));
            cursor = page.nextCursor ?? undefined;
            // a run arriving between pages lands before the first page, never inside the next one
            await store.recordCheck(outcome(at((100 + arrived) * HOUR)), at(100 * HOUR));
            arrived++;
          } while (cursor);
          assert.deepEqual(
            seen,
            Array.from({ length: 25 }, (_, i) => at((24 - i) * HOUR).toISOString()),
          );
        });
      });

      it('a cursor of another list, or made up, is refused', async () => {
        await withStore(async (store) => {
          for (let i = 0; i < 3; i++)
            await store.recordCheck(outcome(at(i * HOUR), [alert(`a${i}`)]), at(i * HOUR));
          const alerts = await store.listAlerts({ limit: 1 });
          await rejects(
            store.listCheckRuns('example.com', { cursor: alerts.nextCursor! }),
            'STORE_INVALID',
            /cursor/,
          );
          await rejects(store.listAlerts({ cursor: 'bm90IGEgY3Vyc29y' }), 'STORE_INVALID', /cursor/);
          await rejects(store.listDeliveries({ cursor: alerts.nextCursor! }), 'STORE_INVALID', /cursor/);
        });
      });

      it('list views clip a long error and stay under the byte cap; the detail has it whole', async () => {
        await withStore(async (store) => {
          const error = 'e'.repeat(MAX_STORED_FINDING_TEXT);
          for (let i = 0; i < 300; i++) {
            await store.recordCheck(
              outcome(at(i * 1000), [], [], run(at(i * 1000), [], { status: 'error', error })),
              T0,
            );
          }
          const page = await store.listCheckRuns('example.com', { limit: 10_000 });
          assert.equal(page.items.length, 300);
          assert.equal(page.items[0]?.error?.length, LIST_TEXT_MAX + 1);
          assert.deepEqual(page.items[0]?.clipped, ['error']);
          assert.equal((await store.getCheckRun(page.items[0]!.id))?.error, error);
        });
      });

      it('alert and delivery pages hold at most 1 MiB of JSON, whatever the limit', async () => {
        await withStore(async (store) => {
          const long = 'z'.repeat(MAX_STORED_FINDING_TEXT);
          for (let i = 0; i < 200; i++) {
            const o = outcome(at(i), [{ ...alert(`a${i}`), message: long, fix: long }]);
            o.open[0]!.deliveries[0]!.event = {
              ...o.open[0]!.deliveries[0]!.event,
              message: long,
              fix: long,
            };
            await store.recordCheck(o, at(i));
          }
          for (const list of [store.listAlerts({ limit: 5000 }), store.listDeliveries({ limit: 5000 })]) {
            const page = await list;
            assert.equal(page.total, 200);
            assert.ok(Buffer.byteLength(JSON.stringify(page)) <= LIST_PAGE_MAX_BYTES);
            assert.ok(page.items.length < 200 && page.nextCursor !== null, 'the rest on the next page');
          }
        });
      });

      it('listAlerts filters by domain and state, newest first, and pages', async () => {
        await withStore(async (store) => {
          const a = await store.recordCheck(outcome(T0, [alert('a'), alert('b'), alert('c')]), T0);
          await store.recordCheck(
            outcome(T0, [alert('a', '', 'other.example')], [], run(T0, [], { domain: 'other.example' })),
            T0,
          );
          await store.recordCheck(outcome(at(HOUR), [], [a.opened[1]!]), at(HOUR));
          const codes = async (filter: Parameters<Store['listAlerts']>[0]) =>
            (await store.listAlerts(filter)).items.map((x) => `${x.domain}/${x.code}`);
          assert.deepEqual(await codes({}), [
            'other.example/a',
            'example.com/c',
            'example.com/b',
            'example.com/a',
          ]);
          assert.deepEqual(await codes({ domain: 'example.com', state: 'open' }), [
            'example.com/c',
            'example.com/a',
          ]);
          assert.deepEqual(await codes({ state: 'resolved' }), ['example.com/b']);
          const first = await store.listAlerts({ domain: 'example.com', limit: 2 });
          assert.equal(first.total, 3);
          const second = await store.listAlerts({
            domain: 'example.com',
            limit: 2,
            cursor: first.nextCursor!,
          });
          assert.deepEqual(
            second.items.map((x) => x.code),
            ['a'],
          );
          assert.equal(second.nextCursor, null);
          await rejects(store.listAlerts({ state: 'closed' as 'open' }), 'STORE_INVALID', /state/);
        });
      });

      it('recentCheckRuns: the newest runs with their findings, at most MAX_RECENT_CHECK_RUNS', async () => {
        await withStore(async (store) => {
          for (let i = 0; i < MAX_RECENT_CHECK_RUNS + 5; i++) {
            await store.recordCheck(outcome(at(i * HOUR), [], [], run(at(i * HOUR), [finding(`f${i}`)])), T0);
          }
          const three = await store.recentCheckRuns('example.com', 3);
          assert.deepEqual(
            three.map((r) => r.findings[0]?.code),
            [
              `f${MAX_RECENT_CHECK_RUNS + 4}`,
              `f${MAX_RECENT_CHECK_RUNS + 3}`,
              `f${MAX_RECENT_CHECK_RUNS + 2}`,
            ],
          );
          assert.equal((await store.recentCheckRuns('example.com', 10_000)).length, MAX_RECENT_CHECK_RUNS);
          assert.deepEqual(await store.recentCheckRuns('other.example', 3), []);
        });
      });
    });

    describe('deliveries', () => {
      it('due ones oldest first; delivered, retried later, or abandoned; a settled one stays settled', async () => {
        await withStore(async (store) => {
          await store.recordCheck(outcome(T0, [alert('a')]), T0);
          await store.recordCheck(outcome(at(1000), [alert('b')]), at(1000));
          assert.deepEqual(await store.dueDeliveries(at(-1), 10), [], 'nothing is due before it was made');
          const [da, db] = await store.dueDeliveries(at(1000), 10);
          assert.deepEqual([da?.event.code, db?.event.code], ['a', 'b']);
          assert.equal((await store.dueDeliveries(at(1000), 1)).length, 1);

          await store.settleDelivery(
            da!.id,
            { ok: false, error: 'HTTP 503', nextAttemptAt: at(60_000) },
            at(2000),
          );
          assert.deepEqual(
            (await store.dueDeliveries(at(59_999), 10)).map((d) => d.id),
            [db!.id],
          );
          const retry = (await store.dueDeliveries(at(60_000), 10)).find((d) => d.id === da!.id)!;
          assert.equal(retry.attempts, 1);
          assert.equal(retry.lastError, 'HTTP 503');
          assert.equal(retry.lastAttemptAt, at(2000).toISOString());

          await store.settleDelivery(da!.id, { ok: true }, at(61_000));
          await store.settleDelivery(db!.id, { ok: false, error: 'x'.repeat(100_000) }, at(61_000));
          assert.deepEqual(await store.dueDeliveries(at(DAY), 10), []);
          const delivered = (await store.listDeliveries({ state: 'delivered' })).items;
          assert.deepEqual(
            delivered.map((d) => [d.id, d.attempts, d.deliveredAt, d.nextAttemptAt]),
            [[da!.id, 2, at(61_000).toISOString(), undefined]],
          );
          const [abandoned] = (await store.listDeliveries({ state: 'abandoned' })).items;
          assert.equal(abandoned?.id, db!.id);
          assert.equal(abandoned?.lastError?.length, MAX_DELIVERY_ERROR);

          await store.settleDelivery(da!.id, { ok: false, error: 'late', nextAttemptAt: at(DAY) }, at(DAY));
          assert.equal((await store.listDeliveries({ alertId: da!.alertId })).items[0]?.state, 'delivered');
        });
      });

      it('listDeliveries filters by alert and state, newest first, and pages', async () => {
        await withStore(async (store) => {
          const o = outcome(T0, [alert('a'), alert('b')]);
          o.open[0]!.deliveries.push({
            channel: 'email',
            target: 'ops@example.com',
            event: event('alert.opened', 'a', T0),
          });
          const { opened } = await store.recordCheck(o, T0);
          const ofA = await store.listDeliveries({ alertId: opened[0]! });
          assert.deepEqual(
            ofA.items.map((d) => d.channel),
            ['email', 'webhook'],
          );
          const first = await store.listDeliveries({ limit: 2 });
          assert.equal(first.total, 3);
          const rest = await store.listDeliveries({ limit: 2, cursor: first.nextCursor! });
          assert.equal(rest.items.length, 1);
          assert.equal(rest.nextCursor, null);
          assert.equal((await store.listDeliveries({ state: 'pending' })).total, 3);
          await rejects(store.listDeliveries({ state: 'lost' as 'pending' }), 'STORE_INVALID', /state/);
        });
      });
    });

    describe('purgeCheckRuns', () => {
      it('deletes old runs oldest first in batches, never one an alert points to', async () => {
        await withStore(async (store, db) => {
          const day = (d: number) => at(d * DAY);
          // day 0: opens a (still open); day 1: opens b; day 2: resolves b; days 3..9: quiet; day 100: now
          const r0 = await store.recordCheck(outcome(day(0), [alert('a')]), day(0));
          const r1 = await store.recordCheck(outcome(day(1), [alert('b')]), day(1));
          const r2 = await store.recordCheck(outcome(day(2), [], [r1.opened[0]!]), day(2));
          for (let d = 3; d < 10; d++) await store.recordCheck(outcome(day(d)), day(d));
          const fresh = await store.recordCheck(outcome(day(100)), day(100));
          const before = day(50).toISOString();
          // b's deliveries are still pending: b and its runs stay for now
          assert.deepEqual(await store.purgeCheckRuns({ before, limit: 4 }), { deleted: 4, remaining: 3 });
          assert.deepEqual(await store.purgeCheckRuns({ before, limit: 4 }), { deleted: 3, remaining: 0 });
          assert.deepEqual(await store.purgeCheckRuns({ before, limit: 4 }), { deleted: 0, remaining: 0 });
          const left = () => db.column('SELECT id FROM check_runs ORDER BY id');
          assert.deepEqual(await left(), [r0.runId, r1.runId, r2.runId, fresh.runId]);

          // once b's notifications are settled, b (resolved before the cutoff) goes, and its runs with it
          for (const d of await store.dueDeliveries(day(2), 10)) {
            if (d.alertId === r1.opened[0]) await store.settleDelivery(d.id, { ok: true }, day(3));
          }
          assert.deepEqual(await store.purgeCheckRuns({ before, limit: 4 }), { deleted: 2, remaining: 0 });
          assert.deepEqual(
            await left(),
            [r0.runId, fresh.runId],
            'the open alert keeps the run that opened it',
          );
          assert.deepEqual(
            (await store.listAlerts()).items.map((a) => a.code),
            ['a'],
          );
          assert.equal(await db.rows('deliveries', `alert = ${r1.opened[0]}`), 0);
          assert.deepEqual(await store.purgeCheckRuns({ before, limit: 0 }), { deleted: 0, remaining: 0 });
        });
      });

      it('an alert resolved after the cutoff keeps both its runs', async () => {
        await withStore(async (store, db) => {
          const opened = await store.recordCheck(outcome(at(0), [alert('a')]), at(0));
          await store.recordCheck(outcome(at(10 * DAY), [], [opened.opened[0]!]), at(10 * DAY));
          for (const d of await store.dueDeliveries(at(10 * DAY), 10))
            await store.settleDelivery(d.id, { ok: true }, at(10 * DAY));
          assert.deepEqual(await store.purgeCheckRuns({ before: at(5 * DAY).toISOString(), limit: 10 }), {
            deleted: 0,
            remaining: 0,
          });
          assert.equal(await db.rows('check_runs'), 2);
          assert.equal(await db.rows('alerts'), 1);
        });
      });

      it('refuses a bad cutoff', async () => {
        await withStore(async (store) => {
          await rejects(store.purgeCheckRuns({ before: 'soon', limit: 1 }), 'STORE_INVALID', /before/);
        });
      });
    });

    describe('domains and monitoring', () => {
      it('removeDomain removes its runs, alerts and deliveries, and nothing of another domain', async () => {
        await withStore(async (store, db) => {
          const mine = await store.recordCheck(outcome(T0, [alert('a')]), T0);
          await store.recordCheck(outcome(at(HOUR), [alert('b')], [mine.opened[0]!]), at(HOUR));
          await store.recordCheck(
            outcome(T0, [alert('a', '', 'other.example')], [], run(T0, [], { domain: 'other.example' })),
            T0,
          );
          assert.equal(await store.removeDomain('example.com'), true);
          assert.equal(await db.rows('check_runs', `domain = 'example.com'`), 0);
          assert.equal(await db.rows('alerts', `domain = 'example.com'`), 0);
          assert.equal(await db.rows('deliveries'), 1, 'only the other domain’s');
          assert.equal(await db.rows('check_runs'), 1);
          assert.equal((await store.listCheckRuns('example.com')).total, 0);
          // added again, it starts with an empty history
          await store.addDomain('example.com', SETTINGS, at(2 * HOUR));
          assert.deepEqual(await store.openAlerts('example.com'), []);
        });
      });

      it('watchOnly is kept by addDomain, changed by updateDomain (policy id unchanged), listed', async () => {
        await withStore(async (store) => {
          const watched = await store.addDomain('watched.example', { ...SETTINGS, watchOnly: true }, T0);
          assert.equal(watched.watchOnly, true);
          assert.equal(
            (await store.getDomain('example.com'))?.watchOnly,
            undefined,
            'absent: not watch-only',
          );
          assert.deepEqual(
            (await store.listDomains()).map((d) => [d.name, d.watchOnly === true]),
            [
              ['example.com', false],
              ['other.example', false],
              ['watched.example', true],
            ],
          );
          const hosted = await store.updateDomain('watched.example', { watchOnly: false }, at(HOUR));
          assert.equal(hosted.watchOnly, undefined);
          assert.equal(hosted.policyId, watched.policyId);
          assert.equal(hosted.updatedAt, at(HOUR).toISOString());
          assert.equal(
            (await store.updateDomain('watched.example', { maxAge: 600 }, at(2 * HOUR))).watchOnly,
            undefined,
          );
          const again = await store.updateDomain('example.com', { watchOnly: true }, at(HOUR));
          assert.equal(again.watchOnly, true);
          assert.equal(
            (await store.updateDomain('example.com', { mode: 'enforce' }, at(2 * HOUR))).watchOnly,
            true,
          );
          await rejects(
            store.addDomain('bad.example', { ...SETTINGS, watchOnly: 'yes' as unknown as boolean }, T0),
            'STORE_INVALID',
            /watchOnly/,
          );
          await rejects(
            store.updateDomain('example.com', { watchOnly: 1 as unknown as boolean }, T0),
            'STORE_INVALID',
          );
        });
      });
    });

    describe('one open alert per key across instances', () => {
      it('two instances recording the same alert keys at once open each key exactly once', async () => {
        await withStore(async (store, db) => {
          const other = await db.another();
          const ROUNDS = 20;
          const opened: number[] = [];
          for (let round = 0; round < ROUNDS; round++) {
            const when = at(round * HOUR);
            const key = alert(`race-${round}`, 'mx1');
            const results = await Promise.all(
              [store, other, store, other].map((s) => s.recordCheck(outcome(when, [key]), when)),
            );
            opened.push(...results.flatMap((r) => r.opened));
          }
          assert.equal(opened.length, ROUNDS, 'each key opened by exactly one of the writers');
          assert.equal(new Set(opened).size, ROUNDS);
          assert.equal(await db.rows('check_runs'), 4 * ROUNDS, 'every run is kept');
          assert.equal(await db.rows('alerts'), ROUNDS);
          assert.equal(await db.rows('deliveries'), ROUNDS, 'one notification per opened alert');
        });
      });
    });
  });
}
