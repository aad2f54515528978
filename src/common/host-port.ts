// Listener addresses as written in settings and options: HOST:PORT, [IPv6]:PORT (RFC 3986 §3.2.2
// brackets), for `serve`, `policyd` and their metrics listeners.
import { isIP } from 'node:net';

export interface HostPort {
  host: string;
  port: number;
}

/** "127.0.0.1:8080", "[::1]:8080", "localhost:8080"; port 0 = any free port. */
export function parseHostPort(text: string): HostPort | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text.trim());
  if (!match) return undefined;
  const host = match[1] ?? match[2]!;
  if (match[1] !== undefined && isIP(host) !== 6) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  return { host, port };
}

/** 127.0.0.0/8, ::1 or the name localhost. */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return isIP(host) === 6 && new URL(`http://[${host}]/`).hostname === '[::1]';
}

/** "127.0.0.1:8080", "[::1]:8080". */
export function formatHostPort(address: HostPort): string {
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
