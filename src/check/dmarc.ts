// The DMARC section of `mxguard check` (RFC 7489; RFC 9989 differences are the parser's notes): the
// `_dmarc.<domain>` TXT record, its syntax, the strength of its policy, and where reports go,
// including the external-destination verification of RFC 7489 §7.1.
//
// A domain without a record of its own falls back to its organizational domain's record (RFC 7489
// §6.6.3; the organizational domain from the Public Suffix List that the `tldts` package ships, §3.2),
// whose `sp` (else `p`) then applies. DMARCbis (RFC 9989) finds the record by a DNS tree walk instead;
// when a domain between the two has a record of its own, the finding says that such receivers use it.
import { getDomain } from 'tldts';
import { DmarcError } from '../dmarc/error.js';
import { type DmarcRecord, formatDmarc, parseDmarc } from '../dmarc/record.js';
import { normalizeName } from '../dns/names.js';
import { lookupTxt, txtLine } from './lookup.js';
import { mailtoDomain, sameOrBelow } from './tlsrpt.js';
import { type CheckEnvironment, type Finding, finding, type Status } from './types.js';

// RFC 7489 §6.6.3: only records beginning with a "v=" tag for DMARC1 are DMARC records.
const DMARC_RECORD = /^v[ \t]*=[ \t]*DMARC1(?![A-Za-z0-9])/i;
const LOOKS_LIKE_DMARC = /^v[ \t]*=[ \t]*dmarc/i;

export async function checkDmarc(domain: string, env: CheckEnvironment): Promise<Finding[]> {
  const name = normalizeName(domain);
  const owner = `_dmarc.${name}`;
  const out: Finding[] = [];
  const add = (status: Status, code: string, message: string, fix?: string) =>
    out.push(finding('dmarc', status, code, message, fix === undefined ? {} : { fix }));
  const starter = `v=DMARC1; p=none; rua=mailto:dmarc@${name}`;

  const answer = await lookupTxt(env.resolver, owner);
  if (answer.kind === 'failed') {
    add(
      'fail',
      'DMARC_DNS',
      `could not read the DMARC record: ${answer.reason}; receivers get a temporary error`,
    );
    return out;
  }
  const txts = answer.kind === 'records' ? answer.records : [];
  const records = txts.filter((t) => DMARC_RECORD.test(t));
  if (records.length > 1) {
    add(
      'fail',
      'DMARC_MULTIPLE',
      `${owner} has ${records.length} DMARC records; RFC 7489 §6.6.3: receivers then apply no DMARC policy: ` +
        records.map((r) => `"${r}"`).join(', '),
      'keep exactly one "v=DMARC1" record',
    );
    return out;
  }
  const text = records[0] ?? txts.find((t) => LOOKS_LIKE_DMARC.test(t));
  if (text === undefined && (await organizationalFallback(name, env, add))) return out;
  if (text === undefined) {
    add(
      'warn',
      'DMARC_NONE',
      `${name} has no DMARC record (${owner} TXT); receivers apply no DMARC policy and send no reports ` +
        '(nor does its organizational domain, RFC 7489 §6.6.3)',
      `${txtLine(owner, starter)}\n(start with p=none, read the reports, then move to p=quarantine and p=reject)`,
    );
    return out;
  }

  let record: DmarcRecord;
  try {
    const parsed = parseDmarc(text);
    record = parsed.record;
    add('pass', 'DMARC_RECORD', `${owner}: "${text}"`);
    for (const w of parsed.warnings) warning(w, record, owner, name, add);
  } catch (err) {
    if (!(err instanceof DmarcError)) throw err;
    add(
      'fail',
      'DMARC_SYNTAX',
      `${owner}: "${text}" is invalid, receivers ignore it: ${err.message}`,
      txtLine(owner, starter),
    );
    for (const p of err.problems.filter((x) => x.severity === 'note')) {
      add('info', 'DMARC_NOTE', `${owner}: ${p.where ? `${p.where}: ` : ''}${p.message}`);
    }
    return out;
  }

  if (record.policy === 'reject') {
    add('pass', 'DMARC_POLICY', 'p=reject: receivers reject mail that fails DMARC');
  } else if (record.policy === 'quarantine') {
    add(
      'pass',
      'DMARC_POLICY',
      'p=quarantine: receivers treat mail that fails DMARC as suspicious (p=reject is stronger)',
    );
  }
  await verifyExternalDestinations(record, name, env, add);
  return out;
}

type Add = (status: Status, code: string, message: string, fix?: string) => void;

/** RFC 7489 §3.2: the organizational domain, by the Public Suffix List (its private section included). */
export function organizationalDomain(name: string): string {
  return getDomain(name, { allowPrivateDomains: true }) ?? name;
}

/**
 * RFC 7489 §6.6.3: no record at `_dmarc.<name>`, so receivers read the organizational domain's. True when that
 * record exists and the finding was added; false when there is none (or the name is its own org domain).
 */
async function organizationalFallback(name: string, env: CheckEnvironment, add: Add): Promise<boolean> {
  const org = organizationalDomain(name);
  if (org === name) return false;
  const owner = `_dmarc.${org}`;
  const answer = await lookupTxt(env.resolver, owner);
  const found = answer.kind === 'records' ? answer.records.filter((t) => DMARC_RECORD.test(t)) : [];
  if (found.length !== 1) return false;
  let record: DmarcRecord;
  try {
    record = parseDmarc(found[0]!).record;
  } catch (err) {
    if (!(err instanceof DmarcError)) throw err;
    return false;
  }
  const policy = record.subdomainPolicy ?? record.policy;
  const which = record.subdomainPolicy === undefined ? 'p' : 'sp';
  const own = txtLine(`_dmarc.${name}`, `v=DMARC1; p=reject; rua=mailto:dmarc@${org}`);
  const strong = policy === 'reject' || policy === 'quarantine';
  add(
    strong ? 'pass' : 'warn',
    'DMARC_ORG_FALLBACK',
    `${name} has no DMARC record of its own; receivers apply the record of its organizational domain ${org} ` +
      `(RFC 7489 §6.6.3): ${which}=${policy ?? 'none'}` +
      (strong ? '' : ': monitoring only for mail from this subdomain'),
    strong
      ? undefined
      : `set sp=quarantine (or reject) in ${owner}, or publish this subdomain's own:\n${own}`,
  );
  const between = await treeWalkRecord(name, org, env);
  if (between !== undefined) {
    add(
      'info',
      'DMARC_TREE_WALK',
      `DMARCbis receivers (RFC 9989 tree walk) use ${between} instead, the nearest record above ${name}`,
    );
  }
  return true;
}

/** The first `_dmarc.<parent>` with a DMARC record between `name` (exclusive) and `org` (exclusive). */
async function treeWalkRecord(name: string, org: string, env: CheckEnvironment): Promise<string | undefined> {
  const labels = name.split('.');
  const orgLabels = org.split('.').length;
  // RFC 9989 caps the walk at 8 labels; a name deeper than that starts there.
  for (let i = Math.max(1, labels.length - 8); labels.length - i > orgLabels; i++) {
    const owner = `_dmarc.${labels.slice(i).join('.')}`;
    const answer = await lookupTxt(env.resolver, owner);
    if (answer.kind === 'records' && answer.records.some((t) => DMARC_RECORD.test(t))) return owner;
  }
  return undefined;
}

/** The parser's warnings and notes as findings, with the corrected record where one follows. */
function warning(
  w: { severity: string; code: string; message: string; where?: string },
  record: DmarcRecord,
  owner: string,
  name: string,
  add: Add,
): void {
  const where = w.where ? `${w.where}: ` : '';
  const publish = (r: DmarcRecord) => txtLine(owner, formatDmarc(r));
  switch (w.code) {
    case 'DMARC_POLICY_NONE':
    case 'DMARC_NO_POLICY':
      add(
        'warn',
        w.code,
        `${w.message}: monitoring only; move to quarantine once the aggregate reports show your own mail passing`,
        publish({ ...record, policy: 'quarantine' }),
      );
      return;
    case 'DMARC_PARTIAL_PCT': {
      const { percent: _dropped, ...rest } = record;
      add('warn', 'DMARC_PCT', w.message, publish(rest));
      return;
    }
    case 'DMARC_NO_RUA':
      add(
        'warn',
        'DMARC_NO_RUA',
        w.message,
        publish({ ...record, aggregateReportUris: [{ uri: `mailto:dmarc@${name}` }] }),
      );
      return;
    case 'DMARC_WEAK_SUBDOMAIN_POLICY': {
      const { subdomainPolicy: _dropped, ...rest } = record;
      add('warn', 'DMARC_WEAK_SUBDOMAIN_POLICY', w.message, publish(rest));
      return;
    }
    default:
      if (w.severity === 'note') add('info', 'DMARC_NOTE', `${owner}: ${where}${w.message}`);
      else add('warn', 'DMARC_WARNING', `${owner}: ${where}${w.message}`);
  }
}

/**
 * RFC 7489 §7.1: reports for this domain go to a mailbox in another domain only if that domain
 * publishes `<this domain>._report._dmarc.<other domain>` TXT "v=DMARC1"; otherwise receivers drop them.
 */
async function verifyExternalDestinations(
  record: DmarcRecord,
  name: string,
  env: CheckEnvironment,
  add: Add,
): Promise<void> {
  const uris = [...(record.aggregateReportUris ?? []), ...(record.failureReportUris ?? [])].map((u) => u.uri);
  const external = [
    ...new Set(
      uris
        .map(mailtoDomain)
        .filter((d): d is string => d !== undefined && !sameOrBelow(d, name) && !sameOrBelow(name, d)),
    ),
  ];
  for (const target of external) {
    const owner = `${name}._report._dmarc.${target}`;
    const answer = await lookupTxt(env.resolver, owner);
    const authorized = answer.kind === 'records' && answer.records.some((t) => DMARC_RECORD.test(t));
    if (authorized) {
      add('pass', 'DMARC_RUA_AUTHORIZED', `${target} accepts DMARC reports for ${name} (${owner})`);
      continue;
    }
    const why = answer.kind === 'failed' ? answer.reason : `${owner} has no "v=DMARC1" TXT record`;
    add(
      'warn',
      'DMARC_RUA_UNAUTHORIZED',
      `reports go to ${target}, outside ${name}, but ${why}; RFC 7489 §7.1: receivers then send no reports there`,
      `${target} must publish:\n${txtLine(owner, 'v=DMARC1')}`,
    );
  }
}
