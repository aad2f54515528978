// TLS-RPT aggregate reports (RFC 8460 §4.4) as parsedmarc's flat SMTP TLS CSV, so that spreadsheets and
// scripts written for parsedmarc's smtp_tls output read ours: per policy of a report one summary row (its
// policy domain and type, the policy strings and MX patterns joined with "|", its successful and failed
// session counts; result_type empty), then one row per failure-details entry (result_type, its
// failed_session_count, the sending and receiving addresses and names, additional_info_uri,
// failure_reason_code). The report's organization, date range and id are repeated on every row.
// One difference from parsedmarc: a failure row also carries its policy_domain and policy_type (parsedmarc
// leaves them empty there), so that a filter by domain keeps a domain's failures.
import { csvRecord, csvRow } from '../common/csv.js';
import type { TlsReport } from './report.js';

export const TLSRPT_CSV_COLUMNS = [
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
] as const;

type Column = (typeof TLSRPT_CSV_COLUMNS)[number];

/** The header line, CRLF-terminated (RFC 4180 §2). */
export function tlsrptCsvHeader(): string {
  return csvRow(TLSRPT_CSV_COLUMNS);
}

/** The rows of one report: per policy its summary row, then a row per failure-details entry. */
export function tlsrptCsvLines(report: TlsReport): string {
  const common: Partial<Record<Column, string>> = {
    organization_name: report.organization,
    begin_date: report.start,
    end_date: report.end,
    report_id: report.reportId,
  };
  let out = '';
  for (const policy of report.policies) {
    const about: Partial<Record<Column, string>> = {
      ...common,
      policy_domain: policy.domain,
      policy_type: policy.type,
      policy_strings: policy.policyStrings.join('|'),
      mx_host_patterns: policy.mxHosts.join('|'),
    };
    out += csvRecord(TLSRPT_CSV_COLUMNS, {
      ...about,
      successful_session_count: String(policy.successful),
      failed_session_count: String(policy.failed),
    });
    for (const f of policy.failures) {
      out += csvRecord(TLSRPT_CSV_COLUMNS, {
        ...about,
        result_type: f.resultType,
        failed_session_count: String(f.count),
        sending_mta_ip: f.sendingMtaIp,
        receiving_ip: f.receivingIp,
        receiving_mx_hostname: f.receivingMxHostname,
        receiving_mx_helo: f.receivingMxHelo,
        additional_info_uri: f.additionalInformation,
        failure_reason_code: f.failureReasonCode,
      });
    }
  }
  return out;
}
