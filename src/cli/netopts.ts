// The options every network command shares (ARCHITECTURE.md "Common options"), and turning them into
// the resolver, trust anchors and limits the checks use.
import type { Command } from 'commander';
import type { NetworkSettings } from '../config/network.js';
import { loadCertificates } from '../dane/cert.js';
import { DaneError } from '../dane/error.js';
import { DnsClient } from '../dns/client.js';
import { DnsError } from '../dns/error.js';
import { parseResolverOption, systemResolvers } from '../dns/resolvconf.js';
import type { DnsServer } from '../dns/resolver.js';
import { CliError, collect, intOption, readInputBytes } from './util.js';

export interface NetworkOptions {
  resolver?: string[];
  caFile?: string[];
  allowPrivate?: boolean;
  timeout: string;
  smtpPort: string;
  httpsPort: string;
}

export interface Network {
  resolver: DnsClient;
  servers: DnsServer[];
  /** PEM certificates added to the system trust anchors. */
  ca: string[];
  allowPrivate: boolean;
  timeoutMs: number;
  smtpPort: number;
  httpsPort: number;
}

/** The options; `smtp: false` leaves out --smtp-port for commands that never connect to an MX host. */
export function addNetworkOptions(command: Command, what: { smtp?: boolean } = {}): Command {
  command
    .option('--resolver <ip[:port]>', 'DNS resolver to ask (repeatable; default: /etc/resolv.conf)', collect)
    .option('--ca-file <file>', 'extra trust anchors (PEM) on top of the system ones (repeatable)', collect)
    .option('--allow-private', 'connect to private, loopback and link-local addresses found in DNS')
    .option('--timeout <seconds>', 'time limit of each network step (policy fetch, each SMTP step)', '30');
  if (what.smtp !== false) {
    command.option(
      '--smtp-port <port>',
      'SMTP port of the MX hosts (for labs; real MX hosts listen on 25)',
      '25',
    );
  }
  return command.option(
    '--https-port <port>',
    'HTTPS port of the policy host (for labs; real ones use 443)',
    '443',
  );
}

export async function networkFromOptions(opts: NetworkOptions): Promise<Network> {
  return openNetwork({
    resolver: opts.resolver ?? [],
    caFile: opts.caFile ?? [],
    allowPrivate: opts.allowPrivate === true,
    timeoutSeconds: intOption('--timeout', opts.timeout, 1, 3600),
    smtpPort: intOption('--smtp-port', opts.smtpPort, 1, 65535),
    httpsPort: intOption('--https-port', opts.httpsPort, 1, 65535),
  });
}

/** The network of a long-running command, from its validated settings (src/config/network.ts). */
export function networkFromSettings(
  settings: NetworkSettings,
  ports: { smtpPort?: number; httpsPort?: number } = {},
): Promise<Network> {
  return openNetwork({ ...settings, smtpPort: ports.smtpPort ?? 25, httpsPort: ports.httpsPort ?? 443 });
}

/** Resolver, trust anchors and limits from checked values; a bad resolver or CA file is a CliError (exit 2). */
async function openNetwork(n: NetworkSettings & { smtpPort: number; httpsPort: number }): Promise<Network> {
  const timeoutMs = n.timeoutSeconds * 1000;
  let servers: DnsServer[];
  try {
    servers = n.resolver.length > 0 ? n.resolver.map(parseResolverOption) : await systemResolvers();
  } catch (err) {
    if (err instanceof DnsError) throw new CliError(2, `--resolver: ${err.message}`);
    throw err;
  }
  const ca = n.caFile.flatMap((file) => {
    try {
      return loadCertificates(readInputBytes(file, 1024 * 1024)).map((c) => c.toString());
    } catch (err) {
      if (err instanceof DaneError) throw new CliError(2, `--ca-file ${file}: ${err.message}`);
      throw err;
    }
  });
  // DNS gets its own short per-try limit: a resolver that does not answer in a few seconds is down.
  const resolver = new DnsClient({ servers, timeoutMs: Math.min(timeoutMs, 3000), tries: 2 });
  return {
    resolver,
    servers,
    ca,
    allowPrivate: n.allowPrivate,
    timeoutMs,
    smtpPort: n.smtpPort,
    httpsPort: n.httpsPort,
  };
}
