// DMARC aggregate reports as mxguard keeps them: RFC 7489 Appendix C (the XML schema) and the DMARCbis
// aggregate format (RFC 9990). This file holds the internal (camelCase) types; parse.ts reads the wire
// formats (XML, .xml.gz, .zip, whole e-mails) into them, with caps while parsing.
import type { DmarcAlignment, DmarcPolicy } from './record.js';

/** The DMARC-evaluated (aligned) result of one mechanism, RFC 7489 Appendix C `DMARCResultType`. */
export type DmarcVerdict = 'pass' | 'fail';
/** What the receiver did with the messages, RFC 7489 Appendix C `DispositionType` (bis: also quarantine/reject). */
export type DmarcDisposition = 'none' | 'quarantine' | 'reject';

/** `<policy_published>`: the record the receiver found. */
export interface DmarcPolicyPublished {
  domain: string;
  p: DmarcPolicy;
  sp?: DmarcPolicy;
  /** 0..100; absent in RFC 9990 reports. */
  pct?: number;
  adkim?: DmarcAlignment;
  aspf?: DmarcAlignment;
  /** RFC 9990: the policy for non-existent subdomains. */
  np?: DmarcPolicy;
  /** `fo` as written. */
  fo?: string;
}

/** `<auth_results><dkim>`: one signature as the receiver checked it (not DMARC-aligned). */
export interface DmarcDkimResult {
  domain: string;
  selector?: string;
  /** none, pass, fail, policy, neutral, temperror, permerror (RFC 7489 Appendix C `DKIMResultType`). */
  result: string;
}

/** `<auth_results><spf>`. */
export interface DmarcSpfResult {
  domain: string;
  /** helo | mfrom, when given. */
  scope?: string;
  /** none, neutral, pass, fail, softfail, temperror, permerror. */
  result: string;
}

/** `<policy_evaluated><reason>`. */
export interface DmarcReason {
  /** forwarded, sampled_out, trusted_forwarder, mailing_list, local_policy, other (or what the reporter wrote). */
  type: string;
  comment?: string;
}

/** One `<record>`: messages from one source IP with one set of results. */
export interface DmarcRecordRow {
  sourceIp: string;
  /** Messages this row stands for. */
  count: number;
  disposition: DmarcDisposition;
  /** DMARC-aligned DKIM result (`policy_evaluated/dkim`). */
  dkim: DmarcVerdict;
  /** DMARC-aligned SPF result (`policy_evaluated/spf`). */
  spf: DmarcVerdict;
  headerFrom: string;
  envelopeFrom?: string;
  envelopeTo?: string;
  dkimResults: DmarcDkimResult[];
  spfResults: DmarcSpfResult[];
  reasons: DmarcReason[];
}

/** One aggregate report. */
export interface DmarcReport {
  kind: 'dmarc';
  organization: string;
  /** `<report_metadata><report_id>`: with organization and domain, what makes a report the same report. */
  reportId: string;
  email?: string;
  /** ISO timestamps of `<date_range>` (begin/end are Unix seconds on the wire). */
  begin: string;
  end: string;
  /** The policy domain (`policy_published/domain`). */
  domain: string;
  policyPublished: DmarcPolicyPublished;
  records: DmarcRecordRow[];
}
