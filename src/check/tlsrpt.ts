// The TLS-RPT section of `mxguard check` (RFC 8460 §3): the `_smtp._tls` TXT record, its syntax and
// its report URIs. Without it, senders have nowhere to report the TLS failures that MTA-STS and DANE
// make them see. Also the record of each MX host (`_smtp._tls.<mx host>`): DANE senders such as mox
// report DANE failures of a host to it (RFC 8460 §3 applies to the policy domain, and a DANE policy's
// domain is the MX host's).
import { normalizeName } from '../dns/names.js';
import { TlsRptError } from '../tlsrpt/error.js';
import { formatTlsRptRecord, parseTlsRptRecord, selectTlsRptRecord } from '../tlsrpt/record.js';
import { lookupTxt, txtLine } from './lookup.js';
import { type CheckEnvironment, type Finding, finding, type MxHost, type Status } from './types.js';

export async function checkTlsRpt(domain: string, env: CheckEnvironment): Promise<Finding[]> {
  const name = normalizeName(domain);
  const owner = `_smtp._tls.${name}`;
  const out: Finding[] = [];
  const add = (status: Status, code: string, message: string, fix?: string) =>
    out.push(finding('tlsrpt', status, code, message, fix === undefined ? {} : { fix }));
  const suggested = txtLine(owner, `v=TLSRPTv1; rua=mailto:tlsrpt@${name}`);

  const answer = await lookupTxt(env.resolver, owner);
  if (answer.kind === 'failed') {
    add(
      'fail',
      'TLSRPT_DNS',
      `could not read the TLS-RPT record: ${answer.reason}; senders cannot send reports`,
    );
    return out;
  }
  const selection = selectTlsRptRecord(answer.kind === 'records' ? answer.records : []);
  if (selection.kind === 'many') {
    // Merge the report addresses of the records that parse into the one record to keep.
    const rua = [
      ...new Set(
        selection.records.flatMap((r) => {
          try {
            return parseTlsRptRecord(r).record.rua;
          } catch {
            return [];
          }
        }),
      ),
    ];
    add(
      'fail',
      'TLSRPT_MULTIPLE',
      `${owner} has ${selection.records.length} "v=TLSRPTv1" records; RFC 8460 §3: senders then send no reports: ` +
        selection.records.map((r) => `"${r}"`).join(', '),
      rua.length > 0 ? txtLine(owner, formatTlsRptRecord({ rua, extensions: [] })) : suggested,
    );
    return out;
  }
  // A record that looks like TLS-RPT but is not selected ("v=TLSRPTv1" alone, "v=TLSRPTv10") is a syntax error.
  const text =
    selection.kind === 'one' ? selection.record : selection.ignored.find((r) => /^v=tlsrpt/i.test(r));
  if (text === undefined) {
    add(
      'warn',
      'TLSRPT_NONE',
      `${name} has no TLS-RPT record (${owner} TXT): senders cannot report failed TLS connections to you`,
      suggested,
    );
    return out;
  }
  let rua: string[];
  try {
    const parsed = parseTlsRptRecord(text);
    rua = parsed.record.rua;
    for (const w of parsed.warnings) {
      const where = w.where ? `${w.where}: ` : '';
      add(w.severity === 'note' ? 'info' : 'warn', 'TLSRPT_NOTE', `${owner}: ${where}${w.message}`);
    }
  } catch (err) {
    if (!(err instanceof TlsRptError)) throw err;
    add(
      'fail',
      'TLSRPT_SYNTAX',
      `${owner}: "${text}" is invalid, senders ignore it: ${err.message}`,
      suggested,
    );
    return out;
  }
  for (const uri of rua) {
    const target = mailtoDomain(uri);
    if (target !== undefined && !sameOrBelow(target, name)) {
      add(
        'info',
        'TLSRPT_RUA_EXTERNAL',
        `reports go to ${uri}, outside ${name}; unlike DMARC (RFC 7489 §7.1), RFC 8460 has no way for ` +
          `${target} to confirm it accepts them, so make sure that mailbox expects TLS reports for ${name}`,
      );
    }
  }
  add('pass', 'TLSRPT_OK', `${owner}: "${text}"; reports go to ${rua.join(', ')}`);
  return out;
}

/** The `_smtp._tls` record of each MX host, shown per host (info: it changes no verdict of the domain). */
export async function checkMxTlsRpt(
  domain: string,
  hosts: readonly MxHost[],
  env: CheckEnvironment,
): Promise<Finding[]> {
  const looked = await Promise.all(
    hosts.map(async (h) => ({ host: h.host, answer: await lookupTxt(env.resolver, `_smtp._tls.${h.host}`) })),
  );
  const out: Finding[] = [];
  const without: string[] = [];
  for (const { host, answer } of looked) {
    const owner = `_smtp._tls.${host}`;
    if (answer.kind === 'failed') {
      out.push(
        finding('tlsrpt', 'info', 'TLSRPT_MX_HOST_DNS', `could not read ${owner}: ${answer.reason}`, {
          host,
        }),
      );
      continue;
    }
    const selection = selectTlsRptRecord(answer.kind === 'records' ? answer.records : []);
    if (selection.kind === 'none') {
      without.push(host);
      continue;
    }
    if (selection.kind === 'many') {
      out.push(
        finding(
          'tlsrpt',
          'warn',
          'TLSRPT_MX_HOST_INVALID',
          `${owner} has ${selection.records.length} "v=TLSRPTv1" records: senders send no reports`,
          { host },
        ),
      );
      continue;
    }
    try {
      const { rua } = parseTlsRptRecord(selection.record).record;
      out.push(
        finding(
          'tlsrpt',
          'info',
          'TLSRPT_MX_HOST',
          `${owner}: DANE senders report failures of ${host} to ${rua.join(', ')}`,
          {
            host,
          },
        ),
      );
    } catch (err) {
      if (!(err instanceof TlsRptError)) throw err;
      out.push(
        finding(
          'tlsrpt',
          'warn',
          'TLSRPT_MX_HOST_INVALID',
          `${owner}: "${selection.record}" is invalid: ${err.message}`,
          {
            host,
          },
        ),
      );
    }
  }
  if (without.length > 0) {
    out.push(
      finding(
        'tlsrpt',
        'info',
        'TLSRPT_MX_HOST_NONE',
        `no TLS-RPT record for the MX host(s) ${without.join(', ')}: DANE senders that report per MX host (mox and ` +
          'others) have nowhere to send reports about them',
        {
          fix: without
            .map((h) => txtLine(`_smtp._tls.${h}`, `v=TLSRPTv1; rua=mailto:tlsrpt@${normalizeName(domain)}`))
            .join('\n'),
        },
      ),
    );
  }
  return out;
}

/** The domain of a mailto: URI's (first) address, lower case; undefined for other schemes. */
export function mailtoDomain(uri: string): string | undefined {
  const m = /^mailto:([^?]*)/i.exec(uri);
  if (!m) return undefined;
  let address: string;
  try {
    address = decodeURIComponent(m[1]!).split(',')[0]!;
  } catch {
    return undefined;
  }
  const at = address.lastIndexOf('@');
  return at < 0 ? undefined : normalizeName(address.slice(at + 1));
}

/** `name` is `domain` or a name below it. */
export function sameOrBelow(name: string, domain: string): boolean {
  const n = normalizeName(name);
  const d = normalizeName(domain);
  return n === d || n.endsWith(`.${d}`);
}
