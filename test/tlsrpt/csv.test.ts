// parsedmarc's SMTP TLS CSV (src/tlsrpt/csv.ts): per policy a summary row, then a row per failure-details
// entry, with parsedmarc's column names and order; lists joined with "|"; RFC 4180 quoting and reporter
// values that start like a spreadsheet formula defused; a report with no policy writes no row.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TLSRPT_CSV_COLUMNS, tlsrptCsvHeader, tlsrptCsvLines } from '../../src/tlsrpt/csv.js';
import type { TlsReport } from '../../src/tlsrpt/report.js';
import { csvRecords, parseCsv } from '../helpers/csv.js';

const REPORT: TlsReport = {
  organization: '=cmd|"/c calc"!A1',
  reportId: '2026-12-01T00:00:00Z_example.com',
  contactInfo: 'smtp-tls-reporting@sender.example',
  start: '2026-12-01T00:00:00Z',
  end: '2026-12-01T23:59:59Z',
  policies: [
    {
      type: 'sts',
      domain: 'example.com',
      policyStrings: ['version: STSv1', 'mode: enforce', 'mx: mx1.example.com', 'max_age: 86400'],
      mxHosts: ['mx1.example.com', '*.example.com'],
      successful: 120,
      failed: 3,
      failures: [
        {
          resultType: 'certificate-expired',
          count: 2,
          sendingMtaIp: '2001:db8::25',
          receivingMxHostname: 'mx1.example.com',
          receivingMxHelo: 'mx1, "the" host',
          receivingIp: '192.0.2.25',
          additionalInformation: 'https://sender.example/tls?q=1',
          failureReasonCode: 'line1\nline2',
        },
        { resultType: 'starttls-not-supported', count: 1 },
      ],
    },
    {
      type: 'no-policy-found',
      domain: 'example.org',
      policyStrings: [],
      mxHosts: [],
      successful: 9,
      failed: 0,
      failures: [],
    },
  ],
};

describe('TLS-RPT CSV', () => {
  it("has parsedmarc's columns in parsedmarc's order", () => {
    assert.deepEqual(parseCsv(tlsrptCsvHeader()), [
      [
        'organization_name',
        'begin_date',
        'end_date',
        'report_id',
        'result_type',
        'successful_session_count',
        'failed_session_count',
        'policy_domain',
        'policy_type',
        'policy_strings',
        'mx_host_patterns',
        'sending_mta_ip',
        'receiving_ip',
        'receiving_mx_hostname',
        'receiving_mx_helo',
        'additional_info_uri',
        'failure_reason_code',
      ],
    ]);
    assert.equal(TLSRPT_CSV_COLUMNS.length, 17);
  });

  it('writes per policy a summary row, then one row per failure detail', () => {
    const rows = csvRecords(tlsrptCsvHeader() + tlsrptCsvLines(REPORT));
    const common = {
      organization_name: `'=cmd|"/c calc"!A1`,
      begin_date: '2026-12-01T00:00:00Z',
      end_date: '2026-12-01T23:59:59Z',
      report_id: '2026-12-01T00:00:00Z_example.com',
    };
    const sts = {
      policy_domain: 'example.com',
      policy_type: 'sts',
      policy_strings: 'version: STSv1|mode: enforce|mx: mx1.example.com|max_age: 86400',
      mx_host_patterns: 'mx1.example.com|*.example.com',
    };
    const none = {
      sending_mta_ip: '',
      receiving_ip: '',
      receiving_mx_hostname: '',
      receiving_mx_helo: '',
      additional_info_uri: '',
      failure_reason_code: '',
    };
    assert.deepEqual(rows, [
      {
        ...common,
        ...sts,
        ...none,
        result_type: '',
        successful_session_count: '120',
        failed_session_count: '3',
      },
      {
        ...common,
        ...sts,
        result_type: 'certificate-expired',
        successful_session_count: '',
        failed_session_count: '2',
        sending_mta_ip: '2001:db8::25',
        receiving_ip: '192.0.2.25',
        receiving_mx_hostname: 'mx1.example.com',
        receiving_mx_helo: 'mx1, "the" host',
        additional_info_uri: 'https://sender.example/tls?q=1',
        failure_reason_code: 'line1\nline2',
      },
      {
        ...common,
        ...sts,
        ...none,
        result_type: 'starttls-not-supported',
        successful_session_count: '',
        failed_session_count: '1',
      },
      {
        ...common,
        ...none,
        policy_domain: 'example.org',
        policy_type: 'no-policy-found',
        policy_strings: '',
        mx_host_patterns: '',
        result_type: '',
        successful_session_count: '9',
        failed_session_count: '0',
      },
    ]);
  });

  it('writes nothing for a report without policies', () => {
    assert.equal(tlsrptCsvLines({ ...REPORT, policies: [] }), '');
  });
});
