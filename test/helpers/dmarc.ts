// DMARC aggregate reports for the API and dashboard tests (src/dmarc/report.ts, made-up values), and the
// HTML/script payloads a hostile reporter could put in every free-text field.
import type { DmarcRecordRow, DmarcReport } from '../../src/dmarc/report.js';

export interface DmarcRowSpec {
  sourceIp: string;
  count: number;
  disposition?: DmarcRecordRow['disposition'];
  dkim?: DmarcRecordRow['dkim'];
  spf?: DmarcRecordRow['spf'];
  headerFrom?: string;
}

/** A report of `organization` for `domain` covering the UTC day `day`. */
export function dmarcReport(spec: {
  organization: string;
  reportId: string;
  domain: string;
  day: string;
  rows: DmarcRowSpec[];
  p?: DmarcReport['policyPublished']['p'];
}): DmarcReport {
  return {
    kind: 'dmarc',
    organization: spec.organization,
    reportId: spec.reportId,
    email: 'noreply-dmarc@example.net',
    begin: `${spec.day}T00:00:00.000Z`,
    end: `${spec.day}T23:59:59.000Z`,
    domain: spec.domain,
    policyPublished: { domain: spec.domain, p: spec.p ?? 'none', adkim: 'r', aspf: 'r', pct: 100 },
    records: spec.rows.map((r) => ({
      sourceIp: r.sourceIp,
      count: r.count,
      disposition: r.disposition ?? 'none',
      dkim: r.dkim ?? 'pass',
      spf: r.spf ?? 'pass',
      headerFrom: r.headerFrom ?? spec.domain,
      dkimResults: [{ domain: spec.domain, selector: 's1', result: r.dkim ?? 'pass' }],
      spfResults: [{ domain: spec.domain, scope: 'mfrom', result: r.spf ?? 'pass' }],
      reasons: [],
    })),
  };
}

/** Payloads that run script if any view renders them as HTML (they set window.__mxguardXss). */
export const DMARC_XSS = {
  organization: '<script>window.__mxguardXss = "organization"</script>Evil Reporter',
  reportId: '<img src=x onerror="window.__mxguardXss = \'report-id\'">',
  headerFrom: '"><svg onload="window.__mxguardXss = \'header-from\'">',
  envelopeFrom: '</td></tr></table><script>window.__mxguardXss = "envelope"</script>',
  selector: '<iframe srcdoc="<script>parent.__mxguardXss=1</script>"></iframe>',
  reason: '<a href="javascript:window.__mxguardXss=\'reason\'">click</a>',
  email: '<b onmouseover="window.__mxguardXss=1">mail</b>',
};

/** A report for `domain` whose every free-text field carries a payload of DMARC_XSS. */
export function xssDmarcReport(domain: string, day: string): DmarcReport {
  const base = dmarcReport({
    organization: DMARC_XSS.organization,
    reportId: DMARC_XSS.reportId,
    domain,
    day,
    rows: [{ sourceIp: '198.51.100.9', count: 5, dkim: 'fail', spf: 'fail', disposition: 'quarantine' }],
  });
  return {
    ...base,
    email: DMARC_XSS.email,
    records: base.records.map((r) => ({
      ...r,
      headerFrom: DMARC_XSS.headerFrom,
      envelopeFrom: DMARC_XSS.envelopeFrom,
      dkimResults: [{ domain, selector: DMARC_XSS.selector, result: 'fail' }],
      reasons: [{ type: 'other', comment: DMARC_XSS.reason }],
    })),
  };
}
