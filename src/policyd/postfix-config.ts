// `mxguard policyd postfix-config`: the Postfix smart host that sends for Exchange 2019 (which can enforce
// neither MTA-STS nor DANE itself) with DANE (RFC 7672) and MTA-STS (RFC 8461, through `mxguard policyd`),
// and the Exchange Send Connector that routes outgoing mail through it. Pure: text in, text out.
//
// The policyd lines (`policydMainCf`) are the one source of truth for the main.cf snippet of docs/policyd.md
// and `mxguard policyd --help`; a test checks that the doc carries them verbatim.
import { isIP } from 'node:net';
import { ProtocolError } from '../common/errors.js';
import { formatHostPort, parseHostPort } from '../common/host-port.js';
import { hostNameProblem, normalizeHost } from '../common/hostname.js';
import { ipValue } from '../common/ip.js';
import { DEFAULT_POLICYD_LISTEN } from './config.js';

export type PostfixConfigErrorCode =
  | 'POSTFIX_CONFIG_NO_RELAY'
  | 'POSTFIX_CONFIG_CIDR'
  | 'POSTFIX_CONFIG_CIDR_HOST_BITS'
  | 'POSTFIX_CONFIG_OPEN_RELAY'
  | 'POSTFIX_CONFIG_POLICYD'
  | 'POSTFIX_CONFIG_SOCKET'
  | 'POSTFIX_CONFIG_HOSTNAME';

export class PostfixConfigError extends ProtocolError<PostfixConfigErrorCode> {}

/** Where Postfix asks `mxguard policyd`: its TCP listener or its UNIX socket. */
export type PolicydEndpoint = { inet: string } | { unix: string };

export interface PostfixConfigInput {
  /** The Exchange servers: addresses or networks (CIDR), IPv4 or IPv6. */
  relayFor: string[];
  /** policyd's TCP listener, HOST:PORT (default 127.0.0.1:8461, policyd's default). */
  policyd?: string;
  /** policyd's UNIX socket instead (`mxguard policyd --socket PATH`). */
  policydSocket?: string;
  /** The smart host's fully qualified name: Postfix's myhostname, and the Send Connector's smart host. */
  hostname: string;
}

export interface PostfixSmartHost {
  hostname: string;
  /** The relay networks as written in mynetworks ("10.0.0.5/32", "[2001:db8::]/64"). */
  relayFor: string[];
  /** The smtp_tls_policy_maps value. */
  policyMap: string;
  /** Settings to set in /etc/postfix/main.cf (comments on lines of their own: main.cf has no trailing comments). */
  mainCf: string;
  /** Lines to put in /etc/postfix/master.cf, or '' when the defaults do. */
  masterCf: string;
  /** Exchange Management Shell commands: the Send Connector through the smart host. */
  sendConnector: string;
}

/** Exchange 2019's default Send Connector size limit (35 MB): the smart host must not refuse less. */
const EXCHANGE_MAX_MESSAGE_BYTES = 35 * 1024 * 1024;
/** Where the smart host's key and certificate chain go (smtpd_tls_chain_files: key first, then the chain). */
export const SMART_HOST_CHAIN_FILE = '/etc/postfix/smarthost-chain.pem';
/** Shorter prefixes relay for a large part of the internet: refused, whatever the intent. */
const MIN_PREFIX = { 4: 8, 6: 16 } as const;

// ---------------------------------------------------------------------------------------------------------
// The policyd lines (docs/policyd.md "Postfix main.cf" shows these, verbatim)

/** The smtp_tls_policy_maps value for a policyd endpoint (socketmap_table(5); Postfix >= 2.10). */
export function policyMapOf(endpoint: PolicydEndpoint): string {
  return 'inet' in endpoint
    ? `socketmap:inet:${endpoint.inet}:postfix`
    : `socketmap:unix:${endpoint.unix}:postfix`;
}

/** The main.cf lines every Postfix that asks `mxguard policyd` needs, with their reasons as comments. */
export function policydMainCf(
  endpoint: PolicydEndpoint = { inet: formatHostPort(DEFAULT_POLICYD_LISTEN) },
): string {
  return lines(
    '# DANE needs DNSSEC-validated answers (RFC 7672 §2): a validating resolver in resolv.conf, with',
    '# "options trust-ad" (glibc >= 2.31 drops the AD bit otherwise)',
    'smtp_dns_support_level = dnssec',
    '# what domains without a policyd answer get: DANE where published, else opportunistic TLS',
    'smtp_tls_security_level = dane',
    '# mxguard policyd: DANE first, then MTA-STS (RFC 8461 §2)',
    `smtp_tls_policy_maps = ${policyMapOf(endpoint)}`,
    '# trust anchors for the MTA-STS "secure" answers (RFC 8461 §4.2: a certificate valid for the MX host)',
    'smtp_tls_CApath = /etc/ssl/certs',
    '# one line per TLS session with its result (Verified / Trusted / Untrusted): what TLS-RPT (RFC 8460)',
    '# reporting and "grep TLS /var/log/mail.log" read',
    'smtp_tls_loglevel = 1',
  );
}

// ---------------------------------------------------------------------------------------------------------
// Input checks

/** An address or network as Postfix writes it in mynetworks: "10.0.0.0/8", "[2001:db8::]/32" (postconf(5)). */
export function relayNetwork(text: string): string {
  const where = `--relay-for ${text}`;
  const [address = '', bits, extra] = text.trim().split('/');
  const family = isIP(address) as 0 | 4 | 6;
  if (
    family === 0 ||
    address.includes('%') ||
    extra !== undefined ||
    (bits !== undefined && !/^\d{1,3}$/.test(bits))
  ) {
    throw new PostfixConfigError(
      'POSTFIX_CONFIG_CIDR',
      'expected an IPv4 or IPv6 address or network (10.0.0.5, 10.0.0.0/24, 2001:db8::/64)',
      { where },
    );
  }
  const width = family === 4 ? 32 : 128;
  const prefix = bits === undefined ? width : Number(bits);
  if (prefix > width) {
    throw new PostfixConfigError('POSTFIX_CONFIG_CIDR', `prefix /${prefix} is longer than ${width} bits`, {
      where,
    });
  }
  if (prefix < MIN_PREFIX[family]) {
    throw new PostfixConfigError(
      'POSTFIX_CONFIG_OPEN_RELAY',
      `/${prefix} would let a large part of the internet relay through the smart host: give the Exchange servers' addresses or networks (at least /${MIN_PREFIX[family]})`,
      { where },
    );
  }
  // isIP said it is an address of this family, so ipValue knows it.
  const value = ipValue(address)!.value;
  const hostBits = BigInt(width - prefix);
  const network = (value >> hostBits) << hostBits;
  const written = family === 4 ? formatIpv4(network) : formatIpv6(network);
  if (network !== value) {
    // Postfix refuses such a pattern ("non-null host address bits"): name the network that was meant.
    throw new PostfixConfigError(
      'POSTFIX_CONFIG_CIDR_HOST_BITS',
      `host bits set after /${prefix}: did you mean ${written}/${prefix}?`,
      { where },
    );
  }
  return family === 4 ? `${written}/${prefix}` : `[${written}]/${prefix}`;
}

function formatIpv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 255n)).join('.');
}

/** RFC 5952 §4 text: lower case, leading zeros dropped, the longest run of two or more zero groups as "::". */
function formatIpv6(value: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = { start: -1, length: 1 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length) best = { start: i, length: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.start < 0) return hex.join(':');
  return `${hex.slice(0, best.start).join(':')}::${hex.slice(best.start + best.length).join(':')}`;
}

function checkHostname(text: string): string {
  const name = normalizeHost(text);
  const problem = !name.includes('.')
    ? 'is not fully qualified (Exchange and TLS need e.g. relay.example.com)'
    : hostNameProblem(name);
  if (problem !== undefined || isIP(name) !== 0) {
    throw new PostfixConfigError(
      'POSTFIX_CONFIG_HOSTNAME',
      `expected the smart host's fully qualified host name: ${problem ?? 'an IP address cannot be checked against a certificate (Send Connector -TlsDomain)'}`,
      { where: `--hostname ${text}` },
    );
  }
  return name;
}

function checkEndpoint(input: PostfixConfigInput): PolicydEndpoint {
  if (input.policyd !== undefined && input.policydSocket !== undefined) {
    throw new PostfixConfigError('POSTFIX_CONFIG_POLICYD', 'give --policyd or --policyd-socket, not both');
  }
  if (input.policydSocket !== undefined) {
    const path = input.policydSocket;
    // The map name follows the path after ":"; white space or "," would split the setting's value.
    if (!path.startsWith('/') || /[\s,:]/.test(path)) {
      throw new PostfixConfigError(
        'POSTFIX_CONFIG_SOCKET',
        'expected an absolute socket path without spaces, "," or ":" (mxguard policyd --socket PATH)',
        { where: `--policyd-socket ${path}` },
      );
    }
    return { unix: path };
  }
  if (input.policyd === undefined) return { inet: formatHostPort(DEFAULT_POLICYD_LISTEN) };
  const hostPort = parseHostPort(input.policyd);
  const hostOk =
    hostPort !== undefined &&
    (isIP(hostPort.host) !== 0 ||
      hostPort.host === 'localhost' ||
      hostNameProblem(normalizeHost(hostPort.host)) === undefined);
  if (hostPort === undefined || !hostOk || hostPort.port === 0) {
    throw new PostfixConfigError(
      'POSTFIX_CONFIG_POLICYD',
      'expected HOST:PORT of mxguard policyd --listen (127.0.0.1:8461, [::1]:8461), port 1-65535',
      { where: `--policyd ${input.policyd}` },
    );
  }
  return { inet: formatHostPort(hostPort) };
}

// ---------------------------------------------------------------------------------------------------------
// The configuration

export function postfixSmartHost(input: PostfixConfigInput): PostfixSmartHost {
  if (input.relayFor.length === 0) {
    throw new PostfixConfigError(
      'POSTFIX_CONFIG_NO_RELAY',
      "give the Exchange servers' addresses with --relay-for (the smart host relays for them only)",
    );
  }
  const relayFor = [...new Set(input.relayFor.map(relayNetwork))];
  const hostname = checkHostname(input.hostname);
  const endpoint = checkEndpoint(input);
  return {
    hostname,
    relayFor,
    policyMap: policyMapOf(endpoint),
    mainCf: mainCf(hostname, relayFor, endpoint),
    masterCf: masterCf(endpoint),
    sendConnector: sendConnector(hostname),
  };
}

function mainCf(hostname: string, relayFor: string[], endpoint: PolicydEndpoint): string {
  return [
    lines(
      `# mxguard policyd postfix-config: smart host for Exchange outbound mail, DANE and MTA-STS enforced`,
      `myhostname = ${hostname}`,
      '# No local delivery and no mail for other domains: this host only sends for Exchange.',
      'mydestination =',
      'relay_domains =',
      'local_recipient_maps =',
      'local_transport = error:5.1.1 this host does not deliver mail locally',
      '# Relay for the Exchange servers only (never an open relay); every other client is refused.',
      `mynetworks = ${relayFor.join(' ')}`,
      'smtpd_client_restrictions = permit_mynetworks, reject',
      'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination',
      '# Exchange sends with -RequireTLS: offer STARTTLS with a certificate for myhostname that Exchange trusts',
      '# (key first, then the certificate chain), and refuse mail in plain text.',
      `smtpd_tls_chain_files = ${SMART_HOST_CHAIN_FILE}`,
      'smtpd_tls_security_level = encrypt',
      'smtpd_tls_loglevel = 1',
      '# Exchange 2019 sends up to 35 MB by default; the smart host must take as much.',
      `message_size_limit = ${EXCHANGE_MAX_MESSAGE_BYTES}`,
    ),
    policydMainCf(endpoint),
  ].join('');
}

function masterCf(endpoint: PolicydEndpoint): string {
  if ('inet' in endpoint) return '';
  // Debian and Ubuntu run smtp(8) chrooted in /var/spool/postfix: the socket path would be looked up there.
  return lines(
    '# smtp(8) must reach the policyd socket: replace the "smtp unix" line with this one (chroot column "n")',
    'smtp      unix  -       -       n       -       -       smtp',
  );
}

function sendConnector(hostname: string): string {
  return lines(
    '# Exchange Management Shell: send all outgoing mail through the smart host, over TLS, checking that its',
    `# certificate is valid for ${hostname} (Exchange must trust its issuer).`,
    `New-SendConnector -Name 'Outbound via ${hostname}' -Usage Custom -AddressSpaces '*' \``,
    `  -DNSRoutingEnabled $false -SmartHosts '${hostname}' -Port 25 \``,
    `  -RequireTLS $true -TlsAuthLevel DomainValidation -TlsDomain '${hostname}'`,
    "# Once mail flows (Get-Queue, the smart host's log), disable the connector that sent to the internet",
    '# before (Get-SendConnector lists them): Set-SendConnector -Identity NAME -Enabled $false',
  );
}

function lines(...text: string[]): string {
  return `${text.join('\n')}\n`;
}
