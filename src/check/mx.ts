// The `mx` section of `mxguard check`: where the domain receives mail (RFC 5321 §5.1), RFC 7505 null MX,
// and the addresses of each MX host, which the tls and dane sections then probe. The lookups are the shared
// sending path (src/sender/path.ts), the same a DANE or MTA-STS sender and `policyd` make; this module turns
// them into findings. Nothing connects anywhere.
import net from 'node:net';
import type { DnsRecordType } from '../dns/resolver.js';
import { privateAddressReason } from '../fetch/address.js';
import { type DnsFailure, dnsResultSummary } from '../sender/dns-failure.js';
import type { HostAddresses, HostView } from '../sender/host.js';
import { MAX_MX_HOSTS } from '../sender/mx.js';
import { gatherSendingPath, type SendingPath } from '../sender/path.js';
import { type CheckEnvironment, type Finding, finding, type MxHost } from './types.js';

export interface MxCheck {
  findings: Finding[];
  /** The MX hosts to probe, by preference; empty for a null MX or when the domain has no usable MX. */
  hosts: MxHost[];
  /** The sending path the findings come from, for the senders section. */
  path: SendingPath;
  /** Set when the check cannot run at all (the resolver did not answer the MX query): exit 2. */
  fatal?: string;
}

/** At most this many addresses of one MX host are probed. */
export const MAX_ADDRESSES_PER_HOST = 8;

export async function checkMx(domain: string, env: CheckEnvironment): Promise<MxCheck> {
  const path = await gatherSendingPath(env.resolver, domain);
  return { ...mxFindings(path, env), path };
}

/** The findings and the hosts to probe, from a gathered sending path. */
function mxFindings(path: SendingPath, env: CheckEnvironment): Omit<MxCheck, 'path'> {
  const { mx } = path;
  const name = mx.domain;
  switch (mx.status) {
    case 'failed': {
      const failure = mx.failure!;
      const unreachable = unreachableReason(failure);
      if (unreachable !== undefined) {
        return { findings: [], hosts: [], fatal: `MX lookup for ${name}: ${unreachable}` };
      }
      return { findings: [failedLookup(failure, name, 'MX_DNSSEC_BOGUS', 'MX_LOOKUP_FAILED')], hosts: [] };
    }
    case 'nxdomain':
      return {
        findings: [
          finding(
            'mx',
            'fail',
            'MX_NXDOMAIN',
            `${name} does not exist (NXDOMAIN): no mail can be delivered to it`,
            {
              fix: `create the domain's records, e.g. ${name}. IN MX 10 mx.${name}.`,
            },
          ),
        ],
        hosts: [],
      };
    case 'implicit':
      return implicitMx(name, path.hosts[0]!, env);
    case 'null': {
      // RFC 7505 §3: a single MX with preference 0 and exchange "." says the domain accepts no mail.
      const note = mx.records[0]?.preference === 0 ? '' : ' (RFC 7505 §3 asks for preference 0)';
      return {
        findings: [
          finding(
            'mx',
            'info',
            'MX_NULL',
            `${name} publishes a null MX (RFC 7505): it accepts no mail${note}; TLS and DANE checks are skipped`,
          ),
        ],
        hosts: [],
      };
    }
    case 'listed':
      break;
  }

  const findings: Finding[] = [];
  const exchanges = mx.records.filter((v) => v.exchange !== '.');
  if (mx.nullMixed) {
    // RFC 7505 §3: a domain that advertises a null MX must not advertise any other MX.
    findings.push(
      finding(
        'mx',
        'fail',
        'MX_NULL_MIXED',
        `${name} has a null MX (".") beside other MX records (RFC 7505 §3)`,
        {
          fix: `delete the record ${name}. IN MX ${mx.records.find((v) => v.exchange === '.')?.preference ?? 0} .`,
        },
      ),
    );
  }

  const listed = exchanges.map((v) => `${v.preference} ${v.exchange}`).join(', ');
  const signed = mx.secure ? ', DNSSEC-signed' : '';
  findings.push(finding('mx', 'pass', 'MX_RECORDS', `${exchanges.length} MX record(s)${signed}: ${listed}`));
  if (mx.published > mx.hosts.length) {
    findings.push(
      finding(
        'mx',
        'info',
        'MX_PROBE_LIMIT',
        `${mx.published} MX hosts: only the first ${MAX_MX_HOSTS} by preference are checked`,
      ),
    );
  }

  const hosts: MxHost[] = [];
  for (const view of path.hosts) {
    const c = mxHostFindings(name, view, env);
    findings.push(...c.findings);
    if (c.host !== undefined) hosts.push(c.host);
  }
  return { findings, hosts };
}

/** RFC 5321 §5.1: without MX records the domain itself is the MX ("implicit MX"), if it has an address. */
function implicitMx(name: string, view: HostView, env: CheckEnvironment): Omit<MxCheck, 'path'> {
  const addresses = view.addresses!;
  const findings = addressFailureFindings(name, addresses);
  if (addresses.all.length === 0 && findings.length === 0) {
    findings.push(
      finding(
        'mx',
        'fail',
        'MX_NONE',
        `${name} has neither MX nor A/AAAA records: mail to it cannot be delivered`,
        {
          fix:
            `${name}. IN MX 10 mx.${name}.  (with A/AAAA records for mx.${name}), or, if the domain ` +
            `sends but never receives mail, the null MX (RFC 7505): ${name}. IN MX 0 .`,
        },
      ),
    );
    return { findings, hosts: [] };
  }
  if (addresses.all.length === 0) return { findings, hosts: [] };
  findings.unshift(
    finding(
      'mx',
      'warn',
      'MX_IMPLICIT',
      `${name} has no MX records; senders deliver to its own address (implicit MX, RFC 5321 §5.1): ` +
        `${addresses.all.join(', ')}`,
      { host: name, fix: `${name}. IN MX 10 ${name}.` },
    ),
  );
  findings.push(...privateFindings(name, addresses.all, env));
  const host: MxHost = {
    host: name,
    preference: 0,
    addresses: probeable(addresses.all, env),
    addressesSecure: addresses.secure,
    ...(view.tlsa === undefined ? {} : { tlsa: view.tlsa }),
  };
  return { findings, hosts: [host] };
}

/** One MX host: IP literal, CNAME, missing addresses, private addresses. */
function mxHostFindings(
  domain: string,
  view: HostView,
  env: CheckEnvironment,
): { findings: Finding[]; host?: MxHost } {
  const { host: exchange, preference } = view.mx;
  if (view.mx.form === 'ip-literal') {
    const literal = view.mx.detail!;
    // RFC 5321 §5.1 / RFC 7505 §3: an MX names a host; an address in its place is looked up as a name.
    return {
      findings: [
        finding(
          'mx',
          'fail',
          'MX_IP_LITERAL',
          `MX ${preference} ${exchange} is an IP address, not a host name (RFC 5321 §5.1): senders cannot use it`,
          {
            host: exchange,
            fix: `mx.${domain}. IN ${net.isIPv6(literal) ? 'AAAA' : 'A'} ${literal}\n${domain}. IN MX ${preference} mx.${domain}.`,
          },
        ),
      ],
    };
  }
  if (view.mx.form === 'invalid') {
    // RFC 5321 §2.3.5: names in SMTP are host names (letters, digits, hyphens); such a host is not probed.
    return {
      findings: [
        finding(
          'mx',
          'fail',
          'MX_HOST_INVALID',
          `MX ${preference} ${JSON.stringify(exchange)} is not a valid host name: ${view.mx.detail}`,
          {
            host: exchange,
            fix: `${domain}. IN MX ${preference} mx.${domain}.  (a host name of letters, digits and hyphens)`,
          },
        ),
      ],
    };
  }

  const addresses = view.addresses!;
  const findings = addressFailureFindings(exchange, addresses);
  if (addresses.cnameTarget !== undefined) {
    // RFC 2181 §10.3 and RFC 5321 §5.1: the MX exchange must be a name with A/AAAA records, not an alias.
    findings.push(
      finding(
        'mx',
        'warn',
        'MX_CNAME',
        `MX host ${exchange} is an alias (CNAME to ${addresses.cnameTarget}); an MX must name the host itself ` +
          '(RFC 2181 §10.3, RFC 5321 §5.1)',
        { host: exchange, fix: `${domain}. IN MX ${preference} ${addresses.cnameTarget}.` },
      ),
    );
  }
  if (addresses.all.length === 0) {
    if (addresses.failures.length === 0) {
      const why = addresses.nxdomain ? 'does not exist (NXDOMAIN)' : 'has no A or AAAA records';
      findings.push(
        finding('mx', 'fail', 'MX_HOST_NO_ADDRESS', `MX host ${exchange} ${why}: senders cannot reach it`, {
          host: exchange,
          fix: `publish an address for it (${exchange}. IN A <address>) or remove ${domain}. IN MX ${preference} ${exchange}.`,
        }),
      );
    }
    return { findings };
  }
  findings.push(...privateFindings(exchange, addresses.all, env));
  let toProbe = probeable(addresses.all, env);
  if (toProbe.length > MAX_ADDRESSES_PER_HOST) {
    findings.push(
      finding(
        'mx',
        'info',
        'MX_PROBE_LIMIT',
        `MX host ${exchange} has ${toProbe.length} addresses: only the first ${MAX_ADDRESSES_PER_HOST} are probed`,
        { host: exchange },
      ),
    );
    toProbe = toProbe.slice(0, MAX_ADDRESSES_PER_HOST);
  }
  return {
    findings,
    host: {
      host: exchange,
      preference,
      addresses: toProbe,
      addressesSecure: addresses.secure,
      ...(addresses.cnameTarget === undefined ? {} : { cnameTarget: addresses.cnameTarget }),
      ...(view.tlsa === undefined ? {} : { tlsa: view.tlsa }),
    },
  };
}

/** Findings for the A/AAAA lookups of `host` that got no answer (SERVFAIL, bogus, timeouts). */
function addressFailureFindings(host: string, addresses: HostAddresses): Finding[] {
  return addresses.failures.map((failure) => {
    if (failure.result.outcome === 'servfail') {
      return failedLookup(failure, host, 'MX_HOST_DNSSEC_BOGUS', 'MX_HOST_LOOKUP_FAILED');
    }
    return finding(
      'mx',
      'fail',
      'MX_HOST_LOOKUP_FAILED',
      `${failure.result.type} lookup for MX host ${host} failed: ${failure.summary}`,
      { host },
    );
  });
}

/** The warn finding for addresses that are not probed without --allow-private; none when allowed. */
function privateFindings(host: string, addresses: string[], env: CheckEnvironment): Finding[] {
  if (env.allowPrivate) return [];
  const refused = addresses.flatMap((ip) => {
    const reason = privateAddressReason(ip);
    return reason === undefined ? [] : [`${ip} (${reason})`];
  });
  if (refused.length === 0) return [];
  return [
    finding(
      'mx',
      'warn',
      'MX_PRIVATE_ADDRESS',
      `MX host ${host} has non-public address(es) ${refused.join(', ')}: not probed ` +
        '(senders on the Internet cannot reach them either; --allow-private probes them)',
      { host, fix: `publish only public addresses for ${host}` },
    ),
  ];
}

/** The addresses the tls/dane sections may connect to. */
export function probeable(
  addresses: readonly string[],
  env: Pick<CheckEnvironment, 'allowPrivate'>,
): string[] {
  return env.allowPrivate ? [...addresses] : addresses.filter((ip) => privateAddressReason(ip) === undefined);
}

/**
 * A SERVFAIL, classified by the shared classifier (the CD repeat): bogus DNSSEC (fail, `bogusCode`) or a broken
 * resolver or zone (fail, `failCode`). Findings about an MX host's addresses name the host.
 */
function failedLookup(failure: DnsFailure, name: string, bogusCode: string, failCode: string): Finding {
  const type = failure.result.type;
  const what = `${type} lookup for ${name}`;
  const host = type === 'MX' ? {} : { host: name };
  if (failure.kind === 'bogus') {
    return finding('mx', 'fail', bogusCode, `${what}: the answer fails DNSSEC validation (bogus)`, {
      ...host,
      fix: dnssecBogusFix(name, type),
    });
  }
  return finding('mx', 'fail', failCode, `${what} failed: ${failure.summary}`, host);
}

export function dnssecBogusFix(name: string, type: DnsRecordType): string {
  return (
    `repair the DNSSEC signatures of the zone holding ${name} (expired RRSIGs, a DS at the parent that matches ` +
    `no DNSKEY...); compare \`dig +cd ${name} ${type}\` with \`delv ${name} ${type}\``
  );
}

/** The resolver could not be used: no reply at all, or it refuses to resolve for us (exit 2, not a finding). */
function unreachableReason(failure: DnsFailure): string | undefined {
  const { result } = failure;
  if (result.outcome === 'timeout') return `no DNS server answered (${result.error ?? 'timeout'})`;
  if (result.outcome === 'error') return result.error ?? 'the DNS query failed';
  if (result.outcome === 'refused') return `the resolver refused the query (${dnsResultSummary(result)})`;
  return undefined;
}
