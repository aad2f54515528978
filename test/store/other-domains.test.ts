// Reports about domains that are not configured ("other domains", src/store/other-domains.ts) on both
// stores (SQLite, and PostgreSQL on a lab server): the per-domain list with counts of both kinds (and '' for reports naming no policy domain), paged
// with total; the report lists' otherDomains filter and domain '' filter; a domain added later leaves the list.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openPostgresStore } from '../../src/store/postgres.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import type { TlsPolicyResult, TlsReport } from '../../src/tlsrpt/report.js';
import { dmarcReport } from '../helpers/dmarc.js';
import { rejectsWithStoreError } from '../helpers/store.js';
import { type LabPostgres, startPostgres } from '../lab/postgres.js';

const NOW = new Date('2026-12-07T12:00:00Z');
const SETTINGS = {
  mode: 'enforce' as const,
  mx: ['mx.ours.example'],
  maxAge: 86400,
  rua: ['mailto:tlsrpt@ours.example'],
};

let root: string;
let lab: LabPostgres;
before(async () => {
  root = mkdtempSync(join(tmpdir(), 'mxguard-other-domains-'));
  lab = await startPostgres();
});
after(async () => {
  await lab?.stop();
  rmSync(root, { recursive: true, force: true });
});

otherDomainsSuite('sqlite', () => openSqliteStore(join(root, 'data')));
otherDomainsSuite('postgres', async () => openPostgresStore(await lab.createDatabase('other_domains')));

function otherDomainsSuite(name: string, open: () => Promise<Store>): void {
  describe(`other domains (${name})`, () => {
    let store: Store;
    before(async () => {
      store = await open();
      await store.addDomain('ours.example', SETTINGS, NOW);
      // TLS-RPT: one report per policy-domain set, starting on `day`.
      const tls = (reportId: string, day: string, domains: string[]): TlsReport => ({
        organization: 'Sender Inc',
        reportId,
        start: `${day}T00:00:00Z`,
        end: `${day}T23:59:59Z`,
        policies: domains.map(
          (domain): TlsPolicyResult => ({
            type: 'sts',
            domain,
            policyStrings: [],
            mxHosts: [],
            successful: 5,
            failed: 1,
            failures: [{ resultType: 'certificate-expired', count: 1 }],
          }),
        ),
      });
      const saveTls = (r: TlsReport) =>
        store.saveReport({ report: r, source: 'import', dkim: 'unverified', warnings: [] }, NOW);
      await saveTls(tls('t-ours', '2026-12-01', ['ours.example']));
      await saveTls(tls('t-mixed', '2026-12-02', ['ours.example', 'stranger.example']));
      await saveTls(tls('t-stranger', '2026-12-03', ['stranger.example']));
      await saveTls(tls('t-other2', '2026-12-04', ['Another.Example']));
      await saveTls(tls('t-nodomain', '2026-12-05', ['']));
      await saveTls(tls('t-nopolicy', '2026-12-06', []));
      const saveDmarc = (reportId: string, domain: string, day: string) =>
        store.saveDmarcReport(
          {
            report: dmarcReport({
              organization: 'google.com',
              reportId,
              domain,
              day,
              rows: [{ sourceIp: '192.0.2.1', count: 3 }],
            }),
            source: 'import',
            dkim: 'unverified',
            warnings: [],
          },
          NOW,
        );
      await saveDmarc('d-ours', 'ours.example', '2026-12-01');
      await saveDmarc('d-stranger', 'stranger.example', '2026-12-07');
      await saveDmarc('d-none', '', '2026-12-02');
    });
    after(async () => {
      await store?.close();
    });

    describe('listOtherDomains', () => {
      it('lists every policy domain that is not configured with its reports of both kinds, "" first', async () => {
        const page = await store.listOtherDomains();
        assert.equal(page.total, 3);
        assert.equal(page.nextCursor, null);
        assert.deepEqual(page.items, [
          // t-nodomain and t-nopolicy name no policy domain; so does d-none.
          { domain: '', tlsrptReports: 2, dmarcReports: 1, lastReportAt: '2026-12-06T00:00:00.000Z' },
          {
            domain: 'another.example',
            tlsrptReports: 1,
            dmarcReports: 0,
            lastReportAt: '2026-12-04T00:00:00.000Z',
          },
          // t-mixed covers ours.example too: it still counts for the domain that is not configured.
          {
            domain: 'stranger.example',
            tlsrptReports: 2,
            dmarcReports: 1,
            lastReportAt: '2026-12-07T00:00:00.000Z',
          },
        ]);
      });

      it('pages by name with the total on every page, and refuses a cursor of another list', async () => {
        const first = await store.listOtherDomains({ limit: 2 });
        assert.deepEqual(
          first.items.map((d) => d.domain),
          ['', 'another.example'],
        );
        assert.equal(first.total, 3);
        assert.ok(first.nextCursor);
        const second = await store.listOtherDomains({ limit: 2, cursor: first.nextCursor });
        assert.deepEqual(
          second.items.map((d) => d.domain),
          ['stranger.example'],
        );
        assert.equal(second.nextCursor, null);
        assert.equal(second.total, 3);
        const reports = await store.listReports({ limit: 1 });
        await rejectsWithStoreError(
          store.listOtherDomains({ cursor: reports.nextCursor! }),
          'STORE_INVALID',
          /cursor/,
        );
      });
    });

    describe('the report lists of other domains', () => {
      it('TLS-RPT: otherDomains keeps the reports none of whose policy domains is configured', async () => {
        const page = await store.listReports({ otherDomains: true });
        assert.deepEqual(
          page.items.map((r) => r.reportId),
          ['t-nopolicy', 't-nodomain', 't-other2', 't-stranger'],
        );
        assert.equal(page.total, 4);
        const stranger = await store.listReports({ otherDomains: true, domain: 'stranger.example' });
        assert.deepEqual(
          stranger.items.map((r) => r.reportId),
          ['t-stranger'],
        );
      });

      it('TLS-RPT: domain "" keeps the reports that name no policy domain', async () => {
        const page = await store.listReports({ domain: '' });
        assert.deepEqual(
          page.items.map((r) => r.reportId),
          ['t-nopolicy', 't-nodomain'],
        );
      });

      it('DMARC: otherDomains keeps the reports whose policy domain is not configured, "" included', async () => {
        const page = await store.listDmarcReports({ otherDomains: true });
        assert.deepEqual(
          page.items.map((r) => r.reportId),
          ['d-stranger', 'd-none'],
        );
        assert.equal(page.total, 2);
      });

      it('a domain configured afterwards leaves the other domains, its reports with it', async () => {
        await store.addDomain('stranger.example', SETTINGS, NOW);
        try {
          const page = await store.listOtherDomains();
          assert.deepEqual(
            page.items.map((d) => d.domain),
            ['', 'another.example'],
          );
          const tls = await store.listReports({ otherDomains: true });
          assert.deepEqual(
            tls.items.map((r) => r.reportId),
            ['t-nopolicy', 't-nodomain', 't-other2'],
          );
          const dmarc = await store.listDmarcReports({ otherDomains: true });
          assert.deepEqual(
            dmarc.items.map((r) => r.reportId),
            ['d-none'],
          );
        } finally {
          await store.removeDomain('stranger.example');
        }
      });
    });
  });
}
