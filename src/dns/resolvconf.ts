// Where queries go: the --resolver option (IP[:PORT], [IPv6]:PORT or IPv6) and the system's
// resolv.conf (resolv.conf(5): "nameserver ADDRESS" lines, at most 3 used, localhost if none).
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { DnsError } from './error.js';
import type { DnsServer } from './resolver.js';

export const DNS_PORT = 53;
/** resolv.conf(5): MAXNS, the number of nameserver lines the system resolver uses. */
const MAX_NAMESERVERS = 3;

/**
 * Parse a resolver given on the command line: "192.0.2.1", "192.0.2.1:5353", "2001:db8::1",
 * "[2001:db8::1]" or "[2001:db8::1]:5353". An IPv6 address with a port needs the brackets.
 */
export function parseResolverOption(spec: string): DnsServer {
  const text = spec.trim();
  const bad = (why: string): DnsError =>
    new DnsError('DNS_BAD_RESOLVER', `resolver "${spec}": ${why} (expected IP[:PORT], [IPv6]:PORT or IPv6)`);

  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (bracketed) {
    const host = bracketed[1]!;
    if (!net.isIPv6(host)) throw bad(`"${host}" is not an IPv6 address`);
    return { host, port: bracketed[2] === undefined ? DNS_PORT : parsePort(bracketed[2], bad) };
  }
  if (net.isIPv6(text)) return { host: text, port: DNS_PORT };
  const colon = text.lastIndexOf(':');
  const host = colon === -1 ? text : text.slice(0, colon);
  if (!net.isIPv4(host)) {
    throw bad(
      host.includes(':') ? 'not an IP address (put an IPv6 address in brackets)' : 'not an IP address',
    );
  }
  return { host, port: colon === -1 ? DNS_PORT : parsePort(text.slice(colon + 1), bad) };
}

function parsePort(text: string, bad: (why: string) => DnsError): number {
  if (!/^[0-9]{1,5}$/.test(text)) throw bad(`port "${text}" is not a number`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw bad(`port ${port} is not 1-65535`);
  return port;
}

/**
 * The nameservers of a resolv.conf text, in order. Lines that are not "nameserver <IP>" are
 * skipped, as are comments ("#" or ";"); with no nameserver line, the local host is used.
 */
export function parseResolvConf(text: string): DnsServer[] {
  const servers: DnsServer[] = [];
  for (const line of text.split(/\r?\n/)) {
    const fields = line
      .replace(/[#;].*$/, '')
      .trim()
      .split(/\s+/);
    if (fields[0] !== 'nameserver' || fields[1] === undefined) continue;
    if (net.isIP(fields[1]) === 0) continue;
    servers.push({ host: fields[1], port: DNS_PORT });
  }
  if (servers.length === 0) return [{ host: '127.0.0.1', port: DNS_PORT }];
  return servers.slice(0, MAX_NAMESERVERS);
}

/** The system's resolvers, for commands run without --resolver. */
export async function systemResolvers(path = '/etc/resolv.conf'): Promise<DnsServer[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new DnsError('DNS_RESOLV_CONF', `${path}: cannot read: ${reason}`, { cause: err });
  }
  return parseResolvConf(text);
}
