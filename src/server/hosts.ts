// Host names of `mxguard serve`: which Host a request names, which names reach the dashboard and API,
// and the RFC 9112 §3.2 rules every request must pass.
//
// DNS rebinding: a hostile page whose name resolves to 127.0.0.1 is, for the browser, same-origin with
// itself, so once the admin logs in it could drive the dashboard with the admin's cookie... except that
// its requests carry its own name in Host. So the dashboard and API answer only on admin host names:
// the listen addresses, localhost, 127.0.0.1, [::1] and `adminHosts`. X-Forwarded-Host is never read
// (a page can set it on its own same-origin requests); a proxy in front must pass the Host on.
// Other hosts get 421 Misdirected Request (RFC 9110 §15.5.20) on the API and /metrics, so that a
// script learns that the host name is wrong, not that the route is missing, and 404 on the dashboard
// pages, as for any name this server does not host. Policy hosts (mta-sts.<domain>) get 404 for all.
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HostPort } from '../common/host-port.js';

/** Names on which the dashboard and API always answer, besides the listen hosts and adminHosts. */
export const DEFAULT_ADMIN_HOSTS = ['localhost', '127.0.0.1', '[::1]'] as const;

// RFC 3986 §3.2.2: host = IP-literal / IPv4address / reg-name; §3.2.3: port = *DIGIT (we want 1-5).
const HOST_HEADER = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._~!$&'()*+,;=%-]+))(?::(\d{1,5}))?$/;
// A DNS name for adminHosts: LDH labels, one or more (a bare "localhost" or "box" is fine).
const DNS_NAME =
  /^(?=.{1,253}\.?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/**
 * The host name of a Host header value: lowercase, port and trailing dot dropped, an IPv6 address in
 * its canonical form within brackets ("[::1]"); undefined when the value is missing, empty or not
 * `host[:port]` (RFC 9110 §7.2).
 */
export function hostNameOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const match = HOST_HEADER.exec(value);
  if (!match) return undefined;
  if (match[3] !== undefined && Number(match[3]) > 65535) return undefined;
  if (match[1] !== undefined) return isIP(match[1]) === 6 ? canonicalIpv6(match[1]) : undefined;
  const name = match[2]!.toLowerCase();
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/** "[::1]" for "0:0:0:0:0:0:0:1" (the URL parser writes IPv6 hosts in RFC 5952 form). */
function canonicalIpv6(address: string): string {
  return new URL(`http://[${address}]/`).hostname;
}

/**
 * An adminHosts entry (config file, MXGUARD_ADMIN_HOSTS, --admin-host) as hostNameOf gives it, or
 * undefined when it is not a DNS name or an IP address (IPv6 with or without brackets; no port).
 */
export function adminHostName(entry: string): string | undefined {
  const text = entry.trim();
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (isIP(bare) === 6) return canonicalIpv6(bare);
  if (isIP(text) === 4 || DNS_NAME.test(text)) return hostNameOf(text);
  return undefined;
}

/**
 * The policy domain a Host header asks for: "mta-sts.<domain>" with port, trailing dot and case
 * ignored; undefined when the host is anything else.
 */
export function policyDomainForHost(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  let name = host.trim().toLowerCase();
  if (name.startsWith('[')) return undefined; // an IPv6 literal is never mta-sts.<domain>
  const colon = name.lastIndexOf(':');
  if (colon !== -1) {
    if (!/^\d{1,5}$/.test(name.slice(colon + 1))) return undefined;
    name = name.slice(0, colon);
  }
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (!name.startsWith('mta-sts.')) return undefined;
  const domain = name.slice('mta-sts.'.length);
  return domain.length > 0 ? domain : undefined;
}

/** The admin host names: the listen hosts, DEFAULT_ADMIN_HOSTS and adminHosts, as hostNameOf writes them. */
export function adminHostNames(config: {
  listen: HostPort;
  tlsListen?: HostPort;
  adminHosts?: string[];
}): Set<string> {
  const names = new Set<string>(DEFAULT_ADMIN_HOSTS);
  for (const entry of [config.listen.host, config.tlsListen?.host, ...(config.adminHosts ?? [])]) {
    const name = entry === undefined ? undefined : adminHostName(entry);
    if (name !== undefined) names.add(name);
  }
  return names;
}

/**
 * Why a request must be refused with 400 whatever it asks for, or undefined. RFC 9112 §3.2: more than
 * one Host field line, or a Host value that is not host[:port]; §3.2.2: an absolute-form target names
 * the host to use, so one that differs from Host is refused rather than letting the two disagree (Node
 * keeps only the first Host in req.headers, fastify routes absolute-form by its path).
 */
export function hostHeaderProblem(req: IncomingMessage): string | undefined {
  const raw = req.rawHeaders;
  let host: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== 4 || name.toLowerCase() !== 'host') continue;
    if (host !== undefined) return 'more than one Host header';
    host = raw[i + 1]!;
  }
  if (host !== undefined && host !== '' && hostNameOf(host) === undefined)
    return 'the Host header is not host[:port]';
  const target = req.url ?? '';
  if (target.startsWith('/') || target === '*') return undefined;
  let authority: string;
  try {
    authority = new URL(target).host;
  } catch {
    return 'the request target is not a path or an absolute URI';
  }
  if (hostNameOf(authority) !== hostNameOf(host)) return 'the request target names another host than Host';
  return undefined;
}

/**
 * A fastify onRequest hook that lets through only requests for an admin host name; policy hosts get
 * 404, other hosts 421 on /api and /metrics and 404 on the dashboard pages.
 */
export function adminHostGuard(names: Set<string>) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const host = req.headers.host;
    const name = hostNameOf(host);
    const policyHost = policyDomainForHost(host) !== undefined;
    if (name !== undefined && names.has(name) && !policyHost) return undefined;
    if (policyHost || !isMachinePath(req.url)) {
      return reply.code(404).type('text/plain; charset=utf-8').send('not found\n');
    }
    return reply.code(421).send({
      statusCode: 421,
      error: 'Misdirected Request',
      message: 'this host name is not one of the admin host names of this server (see adminHosts)',
    });
  };
}

/** /api/... and /metrics: asked by scripts, which get 421 on a wrong host name rather than 404. */
function isMachinePath(target: string): boolean {
  let path = target;
  if (!path.startsWith('/')) {
    try {
      path = new URL(target).pathname; // absolute-form (its host equals Host: hostHeaderProblem)
    } catch {
      return false;
    }
  }
  return /^\/(?:api|metrics)(?:[/?]|$)/.test(path);
}
