// `check --preset`: what a domain hosted at one provider (Exchange Online, Google Workspace) still needs, on top
// of the generic sections. Only provider-specific findings live here; a policy that does not cover an MX host is
// already a failure of the mtasts section, with the one merged policy fix, so nothing here repeats it.
//
// - the MX hosts are the provider's, and of which form (src/common/presets.ts mxForms);
// - the policy already covers the provider's current MX form, so the move off a legacy form does not make
//   senders that enforce MTA-STS refuse mail (RFC 8461 §4.1: a wildcard covers exactly one label, so
//   `*.mx.microsoft` cannot match `<tenant>.<x>-v1.mx.microsoft`);
// - Exchange Online's inbound DANE preconditions (a DNSSEC-signed zone, one MX);
// - the policy host answers without a redirect (RFC 8461 §3.3), which strict validators such as Exchange Online's
//   require;
// - the SPF record authorises the provider's outbound servers.
import { misleadingMicrosoftWildcard, type Preset, providerMxForm } from '../common/presets.js';
import { normalizeName } from '../dns/names.js';
import { mxPatternMatches } from '../mtasts/match.js';
import type { StsPolicy } from '../mtasts/policy.js';
import { lookupTxt, txtLine } from './lookup.js';
import { spfRecords } from './spf.js';
import { type CheckEnvironment, type Finding, finding, type MxHost, type Status } from './types.js';

export interface ProviderInput {
  domain: string;
  preset: Preset;
  hosts: MxHost[];
  /** The MX answer was DNSSEC-secure (AD): the domain's zone is signed and validates. */
  mxSecure: boolean;
  /** The policy senders use, when one was fetched and accepted. */
  policy?: StsPolicy;
  /** The mtasts section's findings (the fetch outcome is read from their codes). */
  stsFindings: readonly Finding[];
}

/** The Exchange Online preset: inbound DANE is enabled per domain (Enable-DnssecForVerifiedDomain). */
const EXCHANGE_ONLINE = 'exchange-online';

export async function checkProvider(input: ProviderInput, env: CheckEnvironment): Promise<Finding[]> {
  const findings: Finding[] = [];
  const add = (status: Status, code: string, message: string, extra: { host?: string; fix?: string } = {}) =>
    findings.push(finding('provider', status, code, message, extra));
  const { preset } = input;
  const provider = preset.description;
  const domain = normalizeName(input.domain);

  const ours = input.hosts.filter((h) => providerMxForm(preset, h.host) !== undefined);
  const others = input.hosts.filter((h) => providerMxForm(preset, h.host) === undefined);
  if (input.hosts.length > 0 && ours.length === 0) {
    add(
      'info',
      'PROVIDER_MX_NONE',
      `none of the MX hosts (${input.hosts.map((h) => h.host).join(', ')}) is at ${provider}: a gateway in front ` +
        `of it, or another provider; the --preset ${preset.name} checks of the MX hosts do not apply`,
    );
  } else if (ours.length > 0) {
    const forms = [...new Set(ours.map((h) => providerMxForm(preset, h.host)?.label))].join('; ');
    add(
      others.length === 0 ? 'pass' : 'warn',
      'PROVIDER_MX',
      others.length === 0
        ? `every MX host is at ${provider} (${forms})`
        : `MX hosts not at ${provider}: ${others.map((h) => h.host).join(', ')}; mail that reaches them skips ` +
            `${provider}'s filtering (a leftover record?)`,
      others.length === 0 ? {} : { fix: `remove the MX records of ${others.map((h) => h.host).join(', ')}` },
    );
  }

  if (input.policy !== undefined && input.policy.mode !== 'none') {
    policyReadiness(input, input.policy, add);
  }
  if (preset.name === EXCHANGE_ONLINE && ours.length > 0) daneReadiness(input, add);
  policyHosting(input, add, findings);
  await spfAuthorises(domain, preset, env, add);
  return findings;
}

type Add = (status: Status, code: string, message: string, extra?: { host?: string; fix?: string }) => void;

/** The policy covers the provider's current MX form before the domain moves to it. */
function policyReadiness(input: ProviderInput, policy: StsPolicy, add: Add): void {
  const { preset } = input;
  for (const pattern of policy.mx) {
    if (misleadingMicrosoftWildcard(pattern)) {
      add(
        'warn',
        'PROVIDER_MX_WILDCARD_ONE_LABEL',
        `the policy pattern ${pattern} covers one label only (RFC 8461 §4.1): it does not match an Exchange ` +
          'Online DANE host such as <domain>.<x>-v1.mx.microsoft',
        {
          fix: 'list the exact MX host (Get-DnssecStatusForVerifiedDomain shows it) or *.<x>-v1.mx.microsoft',
        },
      );
    }
  }
  const onCurrent = input.hosts.some((h) => providerMxForm(preset, h.host)?.era === 'current');
  const onLegacy = input.hosts.some((h) => providerMxForm(preset, h.host)?.era === 'legacy');
  if (!onLegacy || onCurrent) return;
  for (const form of preset.mxForms.filter((f) => f.era === 'current')) {
    const covered =
      form.example !== undefined
        ? policy.mx.some((p) => mxPatternMatches(p, form.example as string))
        : undefined;
    if (covered === true) {
      add('pass', 'PROVIDER_POLICY_READY', `the policy already covers ${form.example} (${form.label})`);
      continue;
    }
    const host = form.example ?? `<domain>.<x>-v1.${form.suffix}`;
    add(
      'info',
      'PROVIDER_POLICY_NOT_READY',
      `the MX is on a legacy ${input.preset.description} form; before the MX moves to ${form.label} ` +
        `(${host}), add that host to the policy and change the _mta-sts id: senders that enforce MTA-STS refuse ` +
        'an MX host the policy does not list (RFC 8461 §4.1), until their cached policy expires',
      { fix: `mx: ${host}` },
    );
  }
}

/** Exchange Online's inbound DANE needs a DNSSEC-signed zone and one MX with preference 0 or 10. */
function daneReadiness(input: ProviderInput, add: Add): void {
  const onDaneEndpoint = input.hosts.some((h) => providerMxForm(input.preset, h.host)?.era === 'current');
  if (onDaneEndpoint) {
    add(
      'pass',
      'PROVIDER_DANE_ENDPOINT',
      'the MX is on the DNSSEC-signed Exchange Online endpoint (inbound DANE)',
    );
    return;
  }
  const missing: string[] = [];
  if (!input.mxSecure)
    missing.push('the zone is DNSSEC-signed (the MX answer is not: sign it and publish the DS)');
  if (input.hosts.length !== 1) missing.push(`one MX record (it has ${input.hosts.length})`);
  else if (![0, 10].includes(input.hosts[0]?.preference ?? -1)) missing.push('an MX preference of 0 or 10');
  add(
    'info',
    'PROVIDER_DANE_NOT_READY',
    missing.length === 0
      ? 'inbound DANE can be enabled: the zone is signed and there is one MX (Enable-DnssecForVerifiedDomain, ' +
          'then the MX becomes the host it prints)'
      : `inbound DANE for Exchange Online needs ${missing.join('; ')}`,
  );
}

/** The policy host answered 200 without a redirect; a redirect is the mtasts section's failure, cited here. */
function policyHosting(input: ProviderInput, add: Add, skipped: Finding[]): void {
  if (input.stsFindings.some((f) => f.code === 'MTASTS_FETCH_REDIRECT')) {
    return void skipped.push({
      ...finding(
        'provider',
        'skip',
        'PROVIDER_POLICY_NO_REDIRECT',
        `the policy host redirects (follows from MTASTS_FETCH_REDIRECT); ${input.preset.description} does not ` +
          'follow redirects either: serve the file itself (mxguard publish azure-static-web-app, or mxguard serve)',
      ),
      cause: 'MTASTS_FETCH_REDIRECT',
    });
  }
  if (input.policy !== undefined) {
    add('pass', 'PROVIDER_POLICY_NO_REDIRECT', 'the policy host answers without a redirect (RFC 8461 §3.3)');
  }
}

/** The domain's SPF record names the provider's mechanism itself (an include through another include is not seen). */
async function spfAuthorises(domain: string, preset: Preset, env: CheckEnvironment, add: Add): Promise<void> {
  const txt = await lookupTxt(env.resolver, domain);
  if (txt.kind !== 'records') return; // the spf section reports a missing record or a failed lookup
  const records = spfRecords(txt.records);
  if (records.length !== 1) return; // several records: the spf section's permerror
  const record = records[0] as string;
  const terms = record.toLowerCase().split(/\s+/);
  const wanted = preset.spf.toLowerCase();
  if (terms.some((t) => t === wanted || t === `+${wanted}`)) {
    add('pass', 'PROVIDER_SPF', `the SPF record authorises ${preset.description} (${preset.spf})`);
    return;
  }
  const parts = record.split(/\s+/);
  const allAt = parts.findIndex((t) => /^[-~?+]?all$/i.test(t));
  const fixed =
    allAt < 0 ? [...parts, preset.spf] : [...parts.slice(0, allAt), preset.spf, ...parts.slice(allAt)];
  add(
    'warn',
    'PROVIDER_SPF',
    `the SPF record does not name ${preset.spf}: mail ${preset.description} sends for ${domain} fails SPF ` +
      '(unless another include reaches it)',
    { fix: txtLine(domain, fixed.join(' ')) },
  );
}
