// The MTA-STS section of `mxguard check` (RFC 8461): the `_mta-sts` TXT record (§3.1), the policy
// fetched as a sender fetches it (§3.3, src/fetch/policy.ts), its syntax (§3.2), whether it covers
// every MX host and only MX hosts in DNS (§4.1), mode and max_age advice, the policy host's
// certificate, an `id` left unchanged while the policy changed (§3.1: senders keep the old policy),
// and a CNAME on the policy host.
//
// A domain without MTA-STS is never a pass here: absence is a `warn` whose fix is the records to
// publish (a `testing` policy first, as RFC 8461 §5 suggests), or `info` when the domain has no MX
// hosts to protect.

import { normalizeHost } from '../common/hostname.js';
import { normalizeName } from '../dns/names.js';
import {
  FETCH_SEVERITY,
  type FetchCode,
  type FetchFailureCode,
  type PolicyFetchAndParseResult,
} from '../fetch/policy.js';
import { MtaStsError } from '../mtasts/error.js';
import { mxPatternMatches, policyCoversMx } from '../mtasts/match.js';
import { formatPolicy, ONE_WEEK, parsePolicy, type StsPolicy } from '../mtasts/policy.js';
import { parseStsRecord, stsIdFromDate } from '../mtasts/record.js';
import { POLICY_PATH, policyHost, policyUrl } from '../mtasts/url.js';
import { failureSentence } from '../sender/dns-failure.js';
import {
  acceptPolicy,
  fetchPolicy,
  lookupStsRecord,
  type StsRecordLookup,
  type StsSeen,
  stsIdOf,
} from '../sender/sts.js';
import { txtLine } from './lookup.js';
import {
  type CheckEnvironment,
  type Finding,
  finding,
  type MtaStsState,
  type MxHost,
  type Status,
} from './types.js';

/** A new policy starts in testing with a short max_age (one day), so mistakes expire quickly. */
export const NEW_POLICY_MAX_AGE = 86400;
/** Certificates of the policy host expiring within this many days are a warning (unless env.expiryWarningDays says). */
export const CERT_WARN_DAYS = 14;
const DAY_MS = 86_400_000;

/** What the `_mta-sts` TXT lookup showed. */
type TxtState = { lookup: StsRecordLookup } & (
  | { kind: 'absent' } // no v=STSv1 record at all: the domain has no MTA-STS
  | { kind: 'failed' } // DNS failure: unknown
  | { kind: 'broken' } // present but unusable (several, or invalid): senders ignore it
  | { kind: 'valid'; id: string }
);

export async function checkMtaSts(
  domain: string,
  env: CheckEnvironment,
  hosts: MxHost[],
): Promise<{ findings: Finding[]; state: MtaStsState; seen: StsSeen }> {
  const name = normalizeName(domain);
  const host = policyHost(name) ?? `mta-sts.${name}`;
  const findings: Finding[] = [];
  const add = (status: Status, code: string, message: string, extra: { host?: string; fix?: string } = {}) =>
    findings.push(finding('mtasts', status, code, message, extra));
  const freshTxt = txtLine(`_mta-sts.${name}`, `v=STSv1; id=${stsIdFromDate(env.now)}`);

  const [txt, fetched, cname] = await Promise.all([
    readTxt(name, env, add, freshTxt),
    (env.fetchPolicy ?? fetchPolicy)(name, {
      resolver: env.resolver,
      port: env.httpsPort,
      ca: env.ca,
      allowPrivate: env.allowPrivate,
      timeoutMs: env.timeoutMs,
    }),
    env.resolver.cname(host),
  ]);
  const state: MtaStsState = txt.kind === 'valid' ? { id: txt.id } : {};
  const id = stsIdOf(txt.lookup);
  const seen: StsSeen = id.kind === 'id' ? { id, policy: acceptPolicy(name, fetched) } : { id };

  if (cname.values.length > 0) {
    add(
      'info',
      'MTASTS_HOST_CNAME',
      `${host} is a CNAME to ${cname.values.join(', ')}; senders follow it, but administrators report that ` +
        "Exchange Online's MTA-STS validation wants A/AAAA records at the policy host itself",
      { host },
    );
  }

  if (!fetched.ok) {
    if (txt.kind === 'absent') {
      add(
        hosts.length === 0 ? 'info' : 'warn',
        'MTASTS_NONE',
        hosts.length === 0
          ? `${name} has no MTA-STS (no _mta-sts TXT record), and no MX hosts for it to protect`
          : `${name} has no MTA-STS: no _mta-sts TXT record and no policy at ${policyUrl(name)}` +
              (fetched.code === 'MTASTS_FETCH_DNS' ? '' : ` (${fetched.message})`) +
              '; senders cannot require TLS for mail to it',
        hosts.length === 0 ? {} : { fix: newDeploymentFix(name, hosts, freshTxt) },
      );
    } else {
      fetchFailure(fetched, name, host, txt, hosts, add);
    }
    return { findings, state, seen };
  }

  state.policy = fetched.policy;
  state.body = fetched.body;
  const { policy } = fetched;
  add(
    'pass',
    'MTASTS_POLICY',
    `policy fetched from ${policyUrl(name)} (${fetched.address}): mode ${policy.mode}, ` +
      `${policy.mx.length} mx pattern(s), max_age ${policy.maxAge}`,
    { host },
  );
  if (txt.kind === 'absent') {
    add(
      'warn',
      'MTASTS_TXT_MISSING',
      `a policy is served at ${policyUrl(name)} but there is no _mta-sts TXT record, so senders never fetch it`,
      { fix: freshTxt },
    );
  }
  // Every correction of the policy body needs a new id, or senders keep the cached policy (§3.1).
  const publish = (p: StsPolicy) => policyFix(name, p, freshTxt);
  const corrected = correctedPolicy(policy, hosts);
  for (const w of fetched.warnings) policyWarning(w, corrected, host, publish, add);
  coverage(policy, hosts, add, publish(corrected));
  // One policy fix per domain: while the policy needs correcting, the mode advice adds no second, different one.
  // (Mode none skips the coverage checks, so its own advice carries the policy.)
  const needsCorrection = policy.mode !== 'none' && formatPolicy(corrected) !== formatPolicy(policy);
  modeAdvice(corrected, add, needsCorrection ? undefined : publish);
  certificateExpiry(fetched.certificate, env.now, env.expiryWarningDays ?? CERT_WARN_DAYS, host, add);
  if (txt.kind === 'valid' && env.previousPolicy) {
    idUnchanged(txt.id, fetched.body, env.previousPolicy, policy, add, freshTxt);
  }
  return { findings: oneFixEach(findings), state, seen };
}

/**
 * The same fix on several findings (the corrected policy fixes a missing MX and a stale pattern at once) is
 * given once, on the first; the others point to it, so a reader never publishes two policies.
 */
function oneFixEach(findings: Finding[]): Finding[] {
  const first = new Map<string, string>();
  return findings.map((f) => {
    if (f.fix === undefined) return f;
    const owner = first.get(f.fix);
    if (owner === undefined) {
      first.set(f.fix, f.code);
      return f;
    }
    const { fix: _same, ...rest } = f;
    return { ...rest, message: `${f.message} (the fix of ${owner} covers this)` };
  });
}

type Add = (status: Status, code: string, message: string, extra?: { host?: string; fix?: string }) => void;

/** RFC 8461 §3.1: exactly one TXT record beginning "v=STSv1;" with a valid id. */
async function readTxt(name: string, env: CheckEnvironment, add: Add, freshTxt: string): Promise<TxtState> {
  const owner = `_mta-sts.${name}`;
  const lookup = await lookupStsRecord(env.resolver, name);
  if (lookup.kind === 'failed') {
    add(
      'fail',
      'MTASTS_TXT_DNS',
      `could not read the _mta-sts TXT record: ${failureSentence(lookup.failure)}; senders without a cached policy cannot use MTA-STS`,
      { fix: `make ${owner} TXT resolvable (check the zone's name servers and DNSSEC signatures)` },
    );
    return { kind: 'failed', lookup };
  }
  if (lookup.kind === 'many') {
    add(
      'fail',
      'MTASTS_TXT_MULTIPLE',
      `${owner} has ${lookup.records.length} "v=STSv1" records; RFC 8461 §3.1: senders then act as if ` +
        `there were none: ${lookup.records.map((r) => `"${r}"`).join(', ')}`,
      { fix: `keep exactly one record:\n${freshTxt}` },
    );
    return { kind: 'broken', lookup };
  }
  if (lookup.kind === 'id') {
    add('pass', 'MTASTS_TXT', `${owner}: "${lookup.record}" (id ${lookup.id})`);
    for (const w of lookup.warnings) {
      const note = w.severity === 'note';
      add(
        note ? 'info' : 'warn',
        note ? 'MTASTS_TXT_NOTE' : 'MTASTS_TXT_WARNING',
        `${owner}: ${where(w)}${w.message}`,
      );
    }
    return { kind: 'valid', id: lookup.id, lookup };
  }
  // A record that looks like STS but is not selected ("v=STSv1" without ";", "v=STSv10") is a syntax error.
  const text = lookup.kind === 'invalid' ? lookup.record : lookup.lookalike;
  if (text === undefined) return { kind: 'absent', lookup };
  let error = lookup.kind === 'invalid' ? lookup.error : undefined;
  if (error === undefined) {
    try {
      parseStsRecord(text);
      error = 'not a "v=STSv1;" record (RFC 8461 §3.1)';
    } catch (err) {
      if (!(err instanceof MtaStsError)) throw err;
      error = err.message;
    }
  }
  add('fail', 'MTASTS_TXT_SYNTAX', `${owner}: "${text}" is invalid, senders ignore it: ${error}`, {
    fix: freshTxt,
  });
  return { kind: 'broken', lookup };
}

/** A fetch failure with its fixed severity (FETCH_SEVERITY) and what to do about it. */
function fetchFailure(
  fetched: Extract<PolicyFetchAndParseResult, { ok: false }>,
  name: string,
  host: string,
  txt: TxtState,
  hosts: MxHost[],
  add: Add,
): void {
  const url = policyUrl(name) ?? `https://${host}${POLICY_PATH}`;
  const consequence =
    txt.kind === 'valid'
      ? '; senders find the TXT record but no usable policy, a policy fetch failure (RFC 8461 §3.3)'
      : '';
  let message = `${fetched.message}${consequence}`;
  if (fetched.code === 'MTASTS_FETCH_POLICY_INVALID' && fetched.problems) {
    message = `${message} — ${fetched.problems
      .filter((p) => p.severity === 'error')
      .map((p) => `${where(p)}${p.message}`)
      .join('; ')}`;
  }
  const policy = suggestedPolicy(hosts);
  const fix = fetchFix(fetched.code, url, host, policy);
  add(FETCH_SEVERITY[fetched.code], fetched.code, message, fix === undefined ? { host } : { host, fix });
}

function fetchFix(
  code: FetchFailureCode,
  url: string,
  host: string,
  policy: string | undefined,
): string | undefined {
  const serve =
    policy === undefined
      ? `serve a policy listing your MX hosts (\`mxguard policy create --mx HOST\`) at ${url} with status 200 and Content-Type text/plain`
      : `serve this policy at ${url} with status 200 and Content-Type text/plain:\n${policy}`;
  switch (code) {
    case 'MTASTS_FETCH_DOMAIN':
      return undefined;
    case 'MTASTS_FETCH_DNS':
      return `publish A/AAAA records for ${host} pointing to a web server with a certificate for ${host}, then ${serve}`;
    case 'MTASTS_FETCH_PRIVATE_ADDRESS':
      return `${host} must resolve to public addresses for senders to reach it (run with --allow-private to check a private deployment anyway)`;
    case 'MTASTS_FETCH_CONNECT':
    case 'MTASTS_FETCH_TIMEOUT':
    case 'MTASTS_FETCH_TLS':
    case 'MTASTS_FETCH_PROTOCOL':
      return `make ${url} answer over HTTPS on port 443, then ${serve}`;
    case 'MTASTS_FETCH_CERT_UNTRUSTED':
    case 'MTASTS_FETCH_CERT_NAME':
    case 'MTASTS_FETCH_CERT_EXPIRED':
      return `install a current certificate for ${host} from a public CA (ACME works), with its intermediate certificates`;
    case 'MTASTS_FETCH_REDIRECT':
      return `RFC 8461 §3.3: redirects are not followed; ${serve}`;
    case 'MTASTS_FETCH_STATUS':
    case 'MTASTS_FETCH_POLICY_INVALID':
      return serve;
    case 'MTASTS_FETCH_TOO_LARGE':
      return `the policy is a few lines of text; ${serve}`;
    case 'MTASTS_FETCH_ENCODING':
      return `serve the policy as UTF-8 text without Content-Encoding; ${serve}`;
  }
}

/** Fetch warnings (Content-Type, charset) and the parser's warnings (non-strict parse, first instance wins). */
function policyWarning(
  w: { severity: string; code: string; message: string; where?: string },
  policy: StsPolicy,
  host: string,
  publish: (p: StsPolicy) => string,
  add: Add,
): void {
  if (w.code in FETCH_SEVERITY) {
    add(FETCH_SEVERITY[w.code as FetchCode], w.code, w.message, {
      host,
      fix: 'serve the policy with the header "Content-Type: text/plain; charset=utf-8"',
    });
    return;
  }
  if (w.code === 'MTASTS_POLICY_DUPLICATE') {
    // Senders following RFC 8461 §3.2 use the first instance, but validators such as checkdmarc reject
    // the policy: an ambiguity the domain cannot afford, so a failure here.
    add(
      'fail',
      w.code,
      `${where(w)}${w.message}; validators reject such a policy and senders may read it differently`,
      { host, fix: publish(policy) },
    );
    return;
  }
  if (w.code === 'MTASTS_MAX_AGE_UNDER_DAY' || w.code === 'MTASTS_MAX_AGE_UNDER_WEEK') {
    // Under a day is too short always; under a week is fine while testing, not once enforced.
    const status = w.code === 'MTASTS_MAX_AGE_UNDER_WEEK' && policy.mode !== 'enforce' ? 'info' : 'warn';
    add(status, w.code, w.message, { host, fix: publish({ ...policy, maxAge: ONE_WEEK * 2 }) });
    return;
  }
  const note = w.severity === 'note';
  add(
    note ? 'info' : 'warn',
    note ? 'MTASTS_POLICY_NOTE' : 'MTASTS_POLICY_WARNING',
    `${where(w)}${w.message}`,
    {
      host,
    },
  );
}

/** RFC 8461 §4.1: every MX host must match a policy mx pattern; every pattern should match an MX host. */
function coverage(policy: StsPolicy, hosts: MxHost[], add: Add, fix: string): void {
  if (policy.mode === 'none' || hosts.length === 0) return;
  const uncovered = hosts.filter((h) => !policyCoversMx(policy, h.host));
  const stale = policy.mx.filter((pattern) => !hosts.some((h) => mxPatternMatches(pattern, h.host)));
  for (const h of uncovered) {
    const enforce = policy.mode === 'enforce';
    add(
      enforce ? 'fail' : 'warn',
      'MTASTS_MX_NOT_COVERED',
      `MX host ${h.host} matches no mx pattern of the policy${wildcardHint(policy, h.host)}; ` +
        (enforce
          ? 'senders that enforce MTA-STS refuse to deliver to it'
          : 'in enforce mode senders would refuse to deliver to it (TLS-RPT reports it now)'),
      { host: h.host, fix },
    );
  }
  for (const pattern of stale) {
    add(
      'warn',
      'MTASTS_MX_STALE',
      `policy mx "${pattern}" matches none of the MX hosts in DNS (${hosts.map((h) => h.host).join(', ')}); ` +
        'remove it, or senders will accept a certificate for a host you no longer use',
      { fix },
    );
  }
  if (uncovered.length === 0) {
    add(
      'pass',
      'MTASTS_MX_COVERED',
      `every MX host matches the policy: ${hosts.map((h) => h.host).join(', ')}`,
    );
  }
}

/** The policy with stale mx patterns dropped and uncovered MX hosts added (unchanged without MX hosts). */
function correctedPolicy(policy: StsPolicy, hosts: MxHost[]): StsPolicy {
  if (hosts.length === 0) return policy;
  const kept = policy.mx.filter((pattern) => hosts.some((h) => mxPatternMatches(pattern, h.host)));
  const added = hosts
    .filter((h) => !kept.some((pattern) => mxPatternMatches(pattern, h.host)))
    .map((h) => normalizeHost(h.host));
  return { ...policy, mx: [...kept, ...new Set(added)] };
}

/** "*.example.com" covers one label only (RFC 8461 §4.1): say so when a deeper host looks covered. */
function wildcardHint(policy: StsPolicy, host: string): string {
  const h = normalizeHost(host);
  const deep = policy.mx.find((p) => p.startsWith('*.') && h.endsWith(normalizeHost(p).slice(1)));
  return deep ? ` ("${deep}" matches exactly one label in place of "*", RFC 8461 §4.1)` : '';
}

/** `publish` undefined: the policy needs correcting first (that fix is given once, elsewhere). */
function modeAdvice(policy: StsPolicy, add: Add, publish: ((p: StsPolicy) => string) | undefined): void {
  const enforced: StsPolicy = { ...policy, mode: 'enforce', maxAge: Math.max(policy.maxAge, ONE_WEEK) };
  switch (policy.mode) {
    case 'enforce':
      add(
        'pass',
        'MTASTS_MODE',
        'mode enforce: senders that support MTA-STS deliver only over validated TLS',
      );
      return;
    case 'testing':
      add(
        'warn',
        'MTASTS_MODE_TESTING',
        'mode testing: senders report TLS failures (TLS-RPT) but still deliver without TLS; switch to enforce ' +
          (publish === undefined
            ? 'once the corrected policy above is published and the TLS-RPT reports are clean'
            : 'once the TLS-RPT reports are clean'),
        publish === undefined ? {} : { fix: publish(enforced) },
      );
      return;
    case 'none':
      add(
        'warn',
        'MTASTS_MODE_NONE',
        'mode none: the policy is being withdrawn (RFC 8461 §8.3), senders drop MTA-STS for this domain',
        {
          fix:
            'if withdrawing: keep this policy served until max_age has passed, then remove the _mta-sts TXT ' +
            (publish === undefined
              ? 'record and the policy; otherwise publish the corrected policy above'
              : `record and the policy; otherwise publish:\n${publish({ ...enforced, mode: 'testing' })}`),
        },
      );
      return;
  }
}

function certificateExpiry(
  certificate: { validTo: string; subject: string },
  now: Date,
  warnDays: number,
  host: string,
  add: Add,
): void {
  const daysLeft = Math.floor((Date.parse(certificate.validTo) - now.getTime()) / DAY_MS);
  const renew = `renew the certificate of ${host} (automate it, e.g. with ACME)`;
  if (daysLeft < 0) {
    add('fail', 'MTASTS_CERT_EXPIRED', `the certificate of ${host} expired on ${certificate.validTo}`, {
      host,
      fix: renew,
    });
  } else if (daysLeft < warnDays) {
    add(
      'warn',
      'MTASTS_CERT_EXPIRING',
      `the certificate of ${host} expires in ${daysLeft} day(s), on ${certificate.validTo}; ` +
        'once it has expired, senders cannot fetch the policy',
      { host, fix: renew },
    );
  } else {
    add(
      'pass',
      'MTASTS_CERT',
      `the certificate of ${host} is valid for ${daysLeft} more days (until ${certificate.validTo})`,
      {
        host,
      },
    );
  }
}

/** RFC 8461 §3.1: senders re-fetch only when the id changes; a new body under the old id goes unseen. */
function idUnchanged(
  id: string,
  body: string,
  previous: { id: string; body: string },
  policy: StsPolicy,
  add: Add,
  freshTxt: string,
): void {
  if (previous.id !== id || sameMeaning(previous.body, body, policy)) return;
  add(
    'warn',
    'MTASTS_ID_UNCHANGED',
    `the policy changed since the last check but the _mta-sts id is still "${id}"; senders keep the old ` +
      'policy until its max_age runs out',
    { fix: freshTxt },
  );
}

/** Same policy for a sender: equal after parsing (line ends, field order), or byte-equal if unparsable. */
function sameMeaning(previousBody: string, body: string, policy: StsPolicy): boolean {
  try {
    return formatPolicy(parsePolicy(previousBody, { strict: false }).policy) === formatPolicy(policy);
  } catch {
    return previousBody === body;
  }
}

/** The policy to serve for a domain starting MTA-STS: testing, its MX hosts, one day. */
/** A testing policy for the MX hosts found; undefined when none was found (no placeholder a user could paste). */
function suggestedPolicy(hosts: MxHost[]): string | undefined {
  const mx = [...new Set(hosts.map((h) => normalizeHost(h.host)))];
  if (mx.length === 0) return undefined;
  return formatPolicy({ mode: 'testing', mx, maxAge: NEW_POLICY_MAX_AGE, extensions: [] });
}

function newDeploymentFix(name: string, hosts: MxHost[], freshTxt: string): string {
  return (
    `${freshTxt}\n` +
    `and serve at ${policyUrl(name)} (HTTPS, certificate for mta-sts.${name}, Content-Type text/plain):\n` +
    (suggestedPolicy(hosts) ?? '')
  );
}

/** A corrected policy and the TXT record with a fresh id that makes senders fetch it. */
function policyFix(name: string, policy: StsPolicy, freshTxt: string): string {
  return `serve at ${policyUrl(name)}:\n${formatPolicy(policy)}then change the id so senders fetch it:\n${freshTxt}`;
}

function where(p: { where?: string }): string {
  return p.where ? `${p.where}: ` : '';
}
