// `mxguard reports import` decodes many files at once but stores them in the order given: the store's
// ids follow the files (and an e-mail's reports follow its attachments), even when a big file that comes
// first takes longer to decode than the small ones after it, and while consecutive files share commits.
// The built command on a real SQLite store; the ids are read back from the store, not from the output.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { runCli } from '../helpers/cli.js';

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'mxguard-cli-import-order-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** A DMARC aggregate report (RFC 7489 Appendix C) with `records` rows. */
function reportXml(reportId: string, records: number): string {
  const rows = Array.from(
    { length: records },
    (_, i) => `<record><row><source_ip>192.0.2.${i % 250}</source_ip><count>1</count>
<policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>
<identifiers><header_from>example.com</header_from></identifiers>
<auth_results><spf><domain>example.com</domain><result>pass</result></spf></auth_results></record>`,
  );
  return `<?xml version="1.0"?><feedback><report_metadata><org_name>Order Test</org_name>
<email>r@example.net</email><report_id>${reportId}</report_id>
<date_range><begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>
<policy_published><domain>example.com</domain><p>none</p></policy_published>${rows.join('\n')}</feedback>`;
}

/** An e-mail with one gzip attachment per report (RFC 7489 §7.2.1.1), in the order given. */
function emailWith(reportIds: string[]): string {
  const parts = reportIds.map(
    (id) =>
      `--b\r\nContent-Type: application/gzip\r\nContent-Transfer-Encoding: base64\r\n` +
      `Content-Disposition: attachment; filename="${id}.xml.gz"\r\n\r\n${gzipSync(reportXml(id, 2)).toString('base64')}\r\n`,
  );
  return (
    `From: dmarc@example.net\r\nTo: rua@example.com\r\nSubject: Report Domain: example.com\r\n` +
    `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n${parts.join('')}--b--\r\n`
  );
}

describe('reports import: the order of the files', () => {
  it('stores the reports in the order of the files, whatever finishes decoding first', async () => {
    const folder = join(root, 'reports');
    mkdirSync(folder);
    const expected: string[] = [];
    // The first file is the slowest to decode; the walk takes the names in sorted order.
    for (let i = 0; i < 60; i++) {
      const name = String(i).padStart(3, '0');
      if (i === 20) {
        writeFileSync(join(folder, `${name}.eml`), emailWith(['r020-a', 'r020-b', 'r020-c']));
        expected.push('r020-a', 'r020-b', 'r020-c');
      } else if (i === 30) {
        writeFileSync(join(folder, `${name}.xml`), '<feedback><not-closed>'); // rejected, in turn
      } else {
        const id = `r${name}`;
        const xml = reportXml(id, i === 0 ? 8000 : 1 + (i % 3));
        writeFileSync(
          join(folder, i % 2 === 0 ? `${name}.xml.gz` : `${name}.xml`),
          i % 2 === 0 ? gzipSync(xml) : xml,
        );
        expected.push(id);
      }
    }
    const data = join(root, 'data');
    await (await openSqliteStore(data)).close();

    const run = runCli(['reports', 'import', folder, '--data-dir', data, '--json']);
    assert.equal(run.code, 1, run.stderr); // the broken file is rejected
    assert.deepEqual(JSON.parse(run.stdout).summary, {
      stored: expected.length,
      alreadyStored: 0,
      rejected: 1,
      unreadable: 0,
      skipped: 0,
    });

    const store = await openSqliteStore(data);
    try {
      const page = await store.listDmarcReports({ limit: 1000 });
      const byId = [...page.items].sort((a, b) => a.id - b.id).map((r) => r.reportId);
      assert.deepEqual(byId, expected);
    } finally {
      await store.close();
    }
  });
});
