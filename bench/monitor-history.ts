// Benchmark: how large monitoring's history makes the SQLite store, and how long its queries take.
//
//   node --import tsx bench/monitor-history.ts [--domains 10] [--days 90] [--findings 40] [--every-minutes 60]
//
// Simulates `serve`'s monitor: every domain checked every `every-minutes` for `days` days, each
// check storing `findings` findings shaped like `mxguard check --json` (mostly passes, a few
// warnings and failures, host names, fixes; a certificate expiry message that changes daily; on
// every third domain a fix naming the check's time, as `check` suggests a fresh _mta-sts id), an
// alert opened now and then and resolved a few hours later (a webhook and an e-mail delivery each,
// settled at once), all through the real store (recordCheck: one fsynced transaction per check).
// Then measures the database file (WAL checkpointed), the share of each table, the time of a
// history page, of the last runs with findings, and of one retention run deleting a day of checks.
// Deterministic (seeded); writes only to a temporary directory, removed at the end.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { applyRetention } from '../src/server/retention.js';
import type { CheckOutcome, NewDelivery, StoredFinding } from '../src/store/monitor-types.js';
import { DATABASE_FILE, openSqliteStore } from '../src/store/sqlite.js';
import { Rng } from './fuzz/random.js';

const MINUTE = 60_000;
const DAY = 1440 * MINUTE;
const START = new Date('2026-01-01T00:00:00Z');

const { values } = parseArgs({
  options: {
    domains: { type: 'string', default: '10' },
    days: { type: 'string', default: '90' },
    findings: { type: 'string', default: '40' },
    'every-minutes': { type: 'string', default: '60' },
  },
});
const DOMAINS = Number(values.domains);
const DAYS = Number(values.days);
const FINDINGS = Number(values.findings);
const EVERY = Number(values['every-minutes']) * MINUTE;

const SECTIONS = ['mx', 'mtasts', 'tls', 'dane', 'senders', 'tlsrpt', 'spf', 'dmarc', 'dkim'];

/** The findings of one domain at one time: stable text, except the daily certificate countdown. */
function findingsOf(domain: string, index: number, when: Date, failing: boolean): StoredFinding[] {
  const rng = new Rng(index + 1);
  const out: StoredFinding[] = [];
  const daysLeft = 80 - Math.floor((when.getTime() - START.getTime()) / DAY);
  for (let i = 0; i < FINDINGS; i++) {
    const section = SECTIONS[i % SECTIONS.length]!;
    const host = `mx${(i % 3) + 1}.${domain}`;
    const roll = rng.int(100);
    const status = roll < 85 ? 'pass' : roll < 95 ? 'warn' : 'info';
    const f: StoredFinding = {
      section,
      status,
      code: `${section.toUpperCase()}_CHECK_${i}`,
      message: `${host}: ${'the published record and what the server presents agree; '.repeat(1 + rng.int(3))}`,
    };
    if (section === 'tls' || section === 'mx' || section === 'dane') f.host = host;
    if (status === 'warn')
      f.fix = `_mta-sts.${domain}. 3600 IN TXT "v=STSv1; id=20260101000000" ${'x'.repeat(60)}`;
    out.push(f);
  }
  out[0] = {
    section: 'tls',
    status: daysLeft < 21 ? 'warn' : 'pass',
    code: 'TLS_CERT_EXPIRY',
    message: `mx1.${domain}: the certificate expires in ${daysLeft} days`,
    host: `mx1.${domain}`,
  };
  if (index % 3 === 0) {
    out[2] = {
      section: 'mtasts',
      status: 'warn',
      code: 'MTASTS_ID_UNCHANGED',
      message: `the policy at https://mta-sts.${domain}/.well-known/mta-sts.txt changed but the id did not`,
      fix: `_mta-sts.${domain}. 3600 IN TXT "v=STSv1; id=${when.toISOString().replace(/\D/g, '').slice(0, 14)}"`,
    };
  }
  if (failing) {
    out[1] = {
      section: 'tls',
      status: 'fail',
      code: 'TLS_STARTTLS_FAILED',
      message: `mx2.${domain}: STARTTLS failed: handshake alert 40 (handshake_failure)`,
      host: `mx2.${domain}`,
      fix: 'Enable STARTTLS with a certificate for the MX host name (RFC 8461 §4.1)',
    };
  }
  return out;
}

function deliveries(kind: 'alert.opened' | 'alert.resolved', domain: string, when: Date): NewDelivery[] {
  const event = {
    event: kind,
    domain,
    code: 'TLS_STARTTLS_FAILED',
    severity: 'fail' as const,
    message: `mx2.${domain}: STARTTLS failed: handshake alert 40 (handshake_failure)`,
    host: `mx2.${domain}`,
    openedAt: when.toISOString(),
    dashboardUrl: `https://mxguard.example.net/domains/${domain}`,
  };
  return [
    { channel: 'webhook', target: 'https://hooks.example.net/mxguard', event },
    { channel: 'email', target: 'postmaster@example.net', event },
  ];
}

function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = performance.now();
  return work().then((value) => ({ ms: performance.now() - t, value }));
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-bench-monitor-'));
  try {
    const store = await openSqliteStore(dir);
    const names = Array.from({ length: DOMAINS }, (_, i) => `domain${i}.example`);
    for (const name of names) {
      await store.addDomain(
        name,
        { mode: 'enforce', mx: [`*.${name}`], maxAge: 604800, rua: [`mailto:tlsrpt@${name}`] },
        START,
      );
    }
    const rng = new Rng(42);
    const openAlert = new Map<string, { id: number; until: number }>();
    let runs = 0;
    let alerts = 0;
    let writeMs = 0;
    let findingsBytes = 0;
    const end = START.getTime() + DAYS * DAY;
    for (let t = START.getTime(); t < end; t += EVERY) {
      for (const [index, domain] of names.entries()) {
        const when = new Date(t);
        const open = openAlert.get(domain);
        // About one outage per domain every ten days, lasting 1 to 6 checks.
        const starts = open === undefined && rng.int(Math.round((10 * DAY) / EVERY)) === 0;
        const failing = starts || (open !== undefined && t < open.until);
        const outcome: CheckOutcome = {
          run: {
            domain,
            at: when.toISOString(),
            durationMs: 800 + rng.int(4000),
            status: failing ? 'fail' : 'warn',
            findings: findingsOf(domain, index, when, failing),
            trigger: 'schedule',
          },
          open: starts
            ? [
                {
                  alert: {
                    domain,
                    code: 'TLS_STARTTLS_FAILED',
                    subject: `mx2.${domain}`,
                    severity: 'fail',
                    message: `mx2.${domain}: STARTTLS failed: handshake alert 40 (handshake_failure)`,
                    fix: 'Enable STARTTLS with a certificate for the MX host name (RFC 8461 §4.1)',
                  },
                  deliveries: deliveries('alert.opened', domain, when),
                },
              ]
            : [],
          resolve:
            open && !failing
              ? [{ alertId: open.id, deliveries: deliveries('alert.resolved', domain, when) }]
              : [],
        };
        findingsBytes += Buffer.byteLength(JSON.stringify(outcome.run.findings));
        const written = await timed(() => store.recordCheck(outcome, when));
        writeMs += written.ms;
        runs++;
        if (starts) {
          alerts++;
          openAlert.set(domain, { id: written.value.opened[0]!, until: t + (1 + rng.int(6)) * EVERY });
        } else if (open && !failing) openAlert.delete(domain);
        for (const d of await store.dueDeliveries(when, 100))
          await store.settleDelivery(d.id, { ok: true }, when);
      }
    }
    const page = await timed(() => store.listCheckRuns(names[0]!, { limit: 100 }));
    const recent = await timed(() => store.recentCheckRuns(names[0]!, 3));
    const alertPage = await timed(() => store.listAlerts({ limit: 100 }));
    // One day later: retention (monitor.historyDays = DAYS) deletes the first day of checks.
    const retention = await timed(() =>
      applyRetention(store, {
        reportDays: 400,
        checkRunDays: DAYS,
        now: new Date(end + DAY),
        pause: async () => {},
      }),
    );
    await store.close();

    const path = join(dir, DATABASE_FILE);
    const db = new Database(path);
    db.pragma('wal_checkpoint(TRUNCATE)');
    const tables = db
      .prepare<[], { name: string; bytes: number }>(
        `SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC LIMIT 8`,
      )
      .all();
    const distinct = db.prepare('SELECT count(*) FROM findings').pluck().get() as number;
    db.close();
    const size = statSync(path).size;
    const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
    console.log(`| what | value |\n|---|---|`);
    console.log(
      `| simulated | ${DOMAINS} domains x ${DAYS} days, a check every ${EVERY / MINUTE} min, ${FINDINGS} findings each |`,
    );
    console.log(`| check runs stored | ${runs} (alerts opened: ${alerts}, deliveries: ${alerts * 4}) |`);
    console.log(
      `| findings JSON per check (mean) | ${(findingsBytes / runs / 1024).toFixed(1)} KiB (distinct findings stored: ${distinct}) |`,
    );
    console.log(
      `| database file (WAL checkpointed) | ${mib(size)} MiB (${(size / runs / 1024).toFixed(1)} KiB per run) |`,
    );
    for (const t of tables) console.log(`| - ${t.name} | ${mib(t.bytes)} MiB |`);
    console.log(`| recordCheck, mean (fsynced transaction) | ${(writeMs / runs).toFixed(2)} ms |`);
    console.log(
      `| listCheckRuns, first page of 100 | ${page.ms.toFixed(1)} ms (total ${page.value.total}) |`,
    );
    console.log(`| recentCheckRuns(3) with findings | ${recent.ms.toFixed(1)} ms |`);
    console.log(`| listAlerts, first page of 100 | ${alertPage.ms.toFixed(1)} ms |`);
    console.log(
      `| retention a day later (deletes day 1) | ${retention.value.checkRuns} runs in ${retention.value.batches} batches, ${retention.ms.toFixed(0)} ms |`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
