// The `mx` section of `mxguard check`: where the domain receives mail (RFC 5321 §5.1), RFC 7505 null MX,
// and the addresses of each MX host, which the tls and dane sections then probe. Only the resolver is used
// here; nothing connects anywhere.
import net from 'node:net';
import { hostnameProblem, normalizeName } from '../dns/names.js';
import type { DnsRecordType, DnsResult, Lookup } from '../dns/resolver.js';
import { privateAddressReason } from '../fetch/address.js';
import { type CheckEnvironment, type Finding, finding, type MxHost } from './types.js';

export interface MxCheck {
  findings: Finding[];
  /** The MX hosts to probe, by preference; empty for a null MX or when the domain has no usable MX. */
  hosts: MxHost[];
  /** Set when the check cannot run at all (the resolver did not answer the MX query): exit 2. */
  fatal?: string;
}

/** At most this many MX hosts are looked up and probed (a hostile zone could list hundreds). */
export const MAX_MX_HOSTS = 10;
/** At most this many addresses of one MX host are probed. */
export const MAX_ADDRESSES_PER_HOST = 8;

export async function checkMx(domain: string, env: CheckEnvironment): Promise<MxCheck> {
  const name = normalizeName(domain);
  const lookup = await env.resolver.mx(name);
  const unreachable = unreachableReason(lookup.result);
  if (unreachable !== undefined) {
    return { findings: [], hosts: [], fatal: `MX lookup for ${name}: ${unreachable}` };
  }

  if (lookup.outcome === 'servfail') {
    return {
      findings: [await failedLookup(env, name, 'MX', 'MX_DNSSEC_BOGUS', 'MX_LOOKUP_FAILED')],
      hosts: [],
    };
  }
  if (lookup.outcome === 'nxdomain') {
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
  }
  if (lookup.values.length === 0) return implicitMx(name, env);

  const findings: Finding[] = [];
  const exchanges = lookup.values.filter((v) => v.exchange !== '.');
  if (lookup.nullMx) {
    // RFC 7505 §3: a single MX with preference 0 and exchange "." says the domain accepts no mail.
    const note = lookup.values[0]?.preference === 0 ? '' : ' (RFC 7505 §3 asks for preference 0)';
    findings.push(
      finding(
        'mx',
        'info',
        'MX_NULL',
        `${name} publishes a null MX (RFC 7505): it accepts no mail${note}; TLS and DANE checks are skipped`,
      ),
    );
    return { findings, hosts: [] };
  }
  if (exchanges.length < lookup.values.length) {
    // RFC 7505 §3: a domain that advertises a null MX must not advertise any other MX.
    findings.push(
      finding(
        'mx',
        'fail',
        'MX_NULL_MIXED',
        `${name} has a null MX (".") beside other MX records (RFC 7505 §3)`,
        {
          fix: `delete the record ${name}. IN MX ${lookup.values.find((v) => v.exchange === '.')?.preference ?? 0} .`,
        },
      ),
    );
  }

  const listed = exchanges.map((v) => `${v.preference} ${v.exchange}`).join(', ');
  const signed = lookup.secure ? ', DNSSEC-signed' : '';
  findings.push(finding('mx', 'pass', 'MX_RECORDS', `${exchanges.length} MX record(s)${signed}: ${listed}`));

  // One entry per host name, with its best (lowest) preference; values come sorted by preference.
  const unique = new Map<string, number>();
  for (const v of exchanges) if (!unique.has(v.exchange)) unique.set(v.exchange, v.preference);
  let candidates = [...unique.entries()];
  if (candidates.length > MAX_MX_HOSTS) {
    findings.push(
      finding(
        'mx',
        'info',
        'MX_PROBE_LIMIT',
        `${candidates.length} MX hosts: only the first ${MAX_MX_HOSTS} by preference are checked`,
      ),
    );
    candidates = candidates.slice(0, MAX_MX_HOSTS);
  }

  const checked = await Promise.all(
    candidates.map(([exchange, preference]) => checkMxHost(name, exchange, preference, env)),
  );
  const hosts: MxHost[] = [];
  for (const c of checked) {
    findings.push(...c.findings);
    if (c.host !== undefined) hosts.push(c.host);
  }
  return { findings, hosts };
}

/** RFC 5321 §5.1: without MX records the domain itself is the MX ("implicit MX"), if it has an address. */
async function implicitMx(name: string, env: CheckEnvironment): Promise<MxCheck> {
  const addresses = await lookupAddresses(name, env);
  const findings = [...addresses.findings];
  if (addresses.all.length === 0 && addresses.findings.length === 0) {
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
  };
  return { findings, hosts: [host] };
}

/** One MX host: IP literal, CNAME, missing addresses, private addresses. */
async function checkMxHost(
  domain: string,
  exchange: string,
  preference: number,
  env: CheckEnvironment,
): Promise<{ findings: Finding[]; host?: MxHost }> {
  const literal = ipLiteral(exchange);
  if (literal !== undefined) {
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

  const invalid = hostnameProblem(exchange);
  if (invalid !== undefined) {
    // RFC 5321 §2.3.5: names in SMTP are host names (letters, digits, hyphens); such a host is not probed.
    return {
      findings: [
        finding(
          'mx',
          'fail',
          'MX_HOST_INVALID',
          `MX ${preference} ${JSON.stringify(exchange)} is not a valid host name: ${invalid}`,
          {
            host: exchange,
            fix: `${domain}. IN MX ${preference} mx.${domain}.  (a host name of letters, digits and hyphens)`,
          },
        ),
      ],
    };
  }

  const addresses = await lookupAddresses(exchange, env);
  const findings = [...addresses.findings];
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
    if (addresses.findings.length === 0) {
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
    },
  };
}

interface Addresses {
  /** A then AAAA values. */
  all: string[];
  /** Both the A and the AAAA answers (or their denials) were DNSSEC-secure. */
  secure: boolean;
  nxdomain: boolean;
  /** Where the name's CNAME chain ends, when it has one. */
  cnameTarget?: string;
  /** Lookup failures (SERVFAIL, bogus, timeouts). */
  findings: Finding[];
}

/** A and AAAA of `host`, both asked (RFC 7672 §2.2.2 needs both to be secure for DANE). */
async function lookupAddresses(host: string, env: CheckEnvironment): Promise<Addresses> {
  const [a, aaaa] = await Promise.all([env.resolver.a(host), env.resolver.aaaa(host)]);
  const findings: Finding[] = [];
  for (const [lookup, type] of [
    [a, 'A'],
    [aaaa, 'AAAA'],
  ] as const) {
    if (lookup.outcome === 'servfail') {
      findings.push(await failedLookup(env, host, type, 'MX_HOST_DNSSEC_BOGUS', 'MX_HOST_LOOKUP_FAILED'));
    } else if (!answered(lookup)) {
      findings.push(
        finding(
          'mx',
          'fail',
          'MX_HOST_LOOKUP_FAILED',
          `${type} lookup for MX host ${host} failed: ${dnsResultSummary(lookup.result)}`,
          { host },
        ),
      );
    }
  }
  const chain = a.result.cnameChain.length > 0 ? a.result.cnameChain : aaaa.result.cnameChain;
  const addresses: Addresses = {
    all: [...a.values, ...aaaa.values],
    secure: a.secure && aaaa.secure,
    nxdomain: a.outcome === 'nxdomain' && aaaa.outcome === 'nxdomain',
    findings,
  };
  const target = chain[chain.length - 1];
  if (target !== undefined) addresses.cnameTarget = target;
  return addresses;
}

function answered(lookup: Lookup<unknown>): boolean {
  return lookup.outcome === 'ok' || lookup.outcome === 'nodata' || lookup.outcome === 'nxdomain';
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

/** The address an MX exchange holds when it is an IP literal ("192.0.2.1", "[192.0.2.1]"), else undefined. */
export function ipLiteral(exchange: string): string | undefined {
  const bare = exchange.replace(/^\[(?:ipv6:)?(.*)\]$/i, '$1');
  return net.isIP(bare) === 0 ? undefined : bare;
}

/**
 * A lookup that came back SERVFAIL, asked again with CD to tell bogus DNSSEC (fail, `bogusCode`) from a broken
 * resolver or zone (fail, `failCode`). Findings about an MX host's addresses name the host.
 */
async function failedLookup(
  env: CheckEnvironment,
  name: string,
  type: 'MX' | 'A' | 'AAAA',
  bogusCode: string,
  failCode: string,
): Promise<Finding> {
  const classified = await env.resolver.classifyFailure(name, type);
  const what = `${type} lookup for ${name}`;
  const host = type === 'MX' ? {} : { host: name };
  if (classified.verdict === 'bogus') {
    return finding('mx', 'fail', bogusCode, `${what}: the answer fails DNSSEC validation (bogus)`, {
      ...host,
      fix: dnssecBogusFix(name, type),
    });
  }
  return finding('mx', 'fail', failCode, `${what} failed: ${dnsResultSummary(classified.result)}`, host);
}

export function dnssecBogusFix(name: string, type: DnsRecordType): string {
  return (
    `repair the DNSSEC signatures of the zone holding ${name} (expired RRSIGs, a DS at the parent that matches ` +
    `no DNSKEY...); compare \`dig +cd ${name} ${type}\` with \`delv ${name} ${type}\``
  );
}

/** Why the resolver gave no usable answer, e.g. "SERVFAIL (EDE 6 DNSSEC Bogus) from 127.0.0.1:53". */
export function dnsResultSummary(result: DnsResult): string {
  const ede = result.ede.map((e) => ` (EDE ${e.code}${e.text ? ` ${e.text}` : ''})`).join('');
  const head = `${result.rcode ?? result.outcome}${ede}`;
  if (result.error) return `${head}: ${result.error}`;
  return result.server ? `${head} from ${result.server.host}:${result.server.port}` : head;
}

/** The resolver could not be used: no reply at all, or it refuses to resolve for us (exit 2, not a finding). */
function unreachableReason(result: DnsResult): string | undefined {
  if (result.outcome === 'timeout') return `no DNS server answered (${result.error ?? 'timeout'})`;
  if (result.outcome === 'error') return result.error ?? 'the DNS query failed';
  if (result.outcome === 'refused') return `the resolver refused the query (${dnsResultSummary(result)})`;
  return undefined;
}
