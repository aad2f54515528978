// Retention of DMARC aggregate reports (src/server/retention.ts, issue 15): reports whose date range
// begins more than retention.reportDays ago go, with their rows, in batches, by the same setting as
// TLS-RPT reports; newer ones and TLS-RPT reports of the same age are judged on their own.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DmarcReport } from '../../src/dmarc/report.js';
import { applyRetention } from '../../src/server/retention.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';

const DAY = 86_400_000;
const NOW = new Date('2026-05-10T12:00:00Z');
const daysAgo = (days: number, extraMs = 0) => new Date(NOW.getTime() - days * DAY - extraMs);

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'mxguard-retention-dmarc-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

function dmarcReport(reportId: string, begin: Date): DmarcReport {
  return {
    kind: 'dmarc',
    organization: 'google.com',
    reportId,
    begin: begin.toISOString(),
    end: new Date(begin.getTime() + DAY - 1000).toISOString(),
    domain: 'example.com',
    policyPublished: { domain: 'example.com', p: 'none' },
    records: [
      {
        sourceIp: '192.0.2.1',
        count: 3,
        disposition: 'none',
        dkim: 'pass',
        spf: 'fail',
        headerFrom: 'example.com',
        dkimResults: [],
        spfResults: [],
        reasons: [],
      },
    ],
  };
}

async function saveDmarc(store: Store, reportId: string, begin: Date): Promise<void> {
  await store.saveDmarcReport(
    { report: dmarcReport(reportId, begin), source: 'imap', dkim: 'pass', warnings: [] },
    NOW,
  );
}

describe('applyRetention of DMARC reports', () => {
  it('deletes the reports older than reportDays in batches, with their rows, and keeps the rest', async () => {
    const store = await openSqliteStore(join(root, 'data'));
    try {
      for (let i = 0; i < 5; i++) await saveDmarc(store, `old-${i}`, daysAgo(100 + i));
      await saveDmarc(store, 'just-old', daysAgo(90, 1));
      await saveDmarc(store, 'at-cutoff', daysAgo(90));
      await saveDmarc(store, 'recent', daysAgo(3));
      await store.saveReport(
        {
          report: {
            organization: 'o',
            reportId: 'tls-old',
            start: daysAgo(200).toISOString(),
            end: daysAgo(199).toISOString(),
            policies: [],
          },
          source: 'https',
          dkim: 'none',
          warnings: [],
        },
        NOW,
      );
      const run = await applyRetention(store, {
        reportDays: 90,
        checkRunDays: 0,
        now: NOW,
        batchSize: 4,
        pause: async () => {},
      });
      assert.deepEqual(run, { reports: 1, dmarcReports: 6, rejected: 0, checkRuns: 0, batches: 3 });
      const left = await store.listDmarcReports();
      assert.deepEqual(left.items.map((r) => r.reportId).sort(), ['at-cutoff', 'recent']);
      // The rows went with their reports: only the two reports left count in the chart.
      const days = await store.dmarcDailyCounts('example.com', '2000-01-01', '2030-01-01');
      assert.equal(
        days.reduce((sum, d) => sum + d.pass, 0),
        6,
      );

      const kept = await applyRetention(store, { reportDays: 0, checkRunDays: 0, now: NOW });
      assert.equal(kept.dmarcReports, 0);
      assert.equal((await store.listDmarcReports()).total, 2);
    } finally {
      await store.close();
    }
  });
});
