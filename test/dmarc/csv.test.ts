// parsedmarc's aggregate CSV (src/dmarc/csv.ts): RFC 4180 quoting, reporter values that start like a
// spreadsheet formula defused, lists joined with "|", booleans as parsedmarc writes them, reverse DNS and
// its registrable domain from the cache, empty cells for what is not known.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { csvCell } from '../../src/common/csv.js';
import { DMARC_CSV_COLUMNS, dmarcCsvHeader, dmarcCsvLines } from '../../src/dmarc/csv.js';
import type { DmarcReport } from '../../src/dmarc/report.js';
import { parseCsv } from '../helpers/csv.js';

const REPORT: DmarcReport = {
  kind: 'dmarc',
  organization: '=HYPERLINK("http://evil.example","x")',
  reportId: 'id,with "quotes"',
  begin: '2026-12-01T00:00:00.000Z',
  end: '2026-12-01T23:59:59.000Z',
  domain: 'example.com',
  policyPublished: { domain: 'example.com', p: 'quarantine', pct: 50 },
  records: [
    {
      sourceIp: '192.0.2.1',
      count: 7,
      disposition: 'quarantine',
      dkim: 'fail',
      spf: 'pass',
      headerFrom: 'example.com',
      dkimResults: [
        { domain: 'example.com', selector: 's1', result: 'fail' },
        { domain: 'esp.example', result: 'pass' },
      ],
      spfResults: [{ domain: 'bounce.example.com', scope: 'mfrom', result: 'pass' }],
      reasons: [{ type: 'forwarded', comment: 'line1\nline2' }],
    },
  ],
};

describe('DMARC CSV', () => {
  it('quotes per RFC 4180 and defuses formulas', () => {
    assert.equal(csvCell('plain'), 'plain');
    assert.equal(csvCell('a,b'), '"a,b"');
    assert.equal(csvCell('say "hi"'), '"say ""hi"""');
    assert.equal(csvCell('=1+1'), "'=1+1");
    assert.equal(csvCell('+1'), "'+1");
    assert.equal(csvCell('-1'), "'-1");
    assert.equal(csvCell('@SUM(A1)'), "'@SUM(A1)");
    assert.equal(csvCell('=A1,B1'), `"'=A1,B1"`);
  });

  it('writes one line per record with the columns filled as parsedmarc does', () => {
    assert.equal(dmarcCsvHeader(), `${DMARC_CSV_COLUMNS.join(',')}\r\n`);
    const text = dmarcCsvLines(REPORT, new Map([['192.0.2.1', 'mail-out.esp.example.co.uk']]));
    assert.ok(text.endsWith('\r\n'));
    const rows = parseCsv(text);
    // The comment's line break is inside a quoted cell: one record, one CSV row.
    assert.equal(rows.length, 1);
    const row = Object.fromEntries(DMARC_CSV_COLUMNS.map((c, i) => [c, rows[0]![i]]));
    assert.deepEqual(row, {
      xml_schema: '',
      org_name: `'=HYPERLINK("http://evil.example","x")`,
      org_email: '',
      org_extra_contact_info: '',
      report_id: 'id,with "quotes"',
      begin_date: '2026-12-01 00:00:00',
      end_date: '2026-12-01 23:59:59',
      errors: '',
      domain: 'example.com',
      adkim: '',
      aspf: '',
      p: 'quarantine',
      sp: '',
      pct: '50',
      fo: '',
      source_ip_address: '192.0.2.1',
      source_country: '',
      source_reverse_dns: 'mail-out.esp.example.co.uk',
      source_base_domain: 'example.co.uk',
      count: '7',
      spf_aligned: 'True',
      dkim_aligned: 'False',
      dmarc_aligned: 'True',
      disposition: 'quarantine',
      policy_override_reasons: 'forwarded',
      policy_override_comments: 'line1\nline2',
      envelope_from: '',
      header_from: 'example.com',
      envelope_to: '',
      dkim_domains: 'example.com|esp.example',
      dkim_selectors: 's1|',
      dkim_results: 'fail|pass',
      spf_domains: 'bounce.example.com',
      spf_scopes: 'mfrom',
      spf_results: 'pass',
    });
    assert.equal(dmarcCsvLines({ ...REPORT, records: [] }), '');
  });
});
