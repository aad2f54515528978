// The sending path of a recipient domain as a sending MTA sees it, gathered once for every consumer
// (mox's smtpclient/gather.go is the shape): the MX step (mx.ts), then each MX host's addresses and TLSA
// RRset (host.ts), with the DNS security status of each step. `check` turns it into findings, `policyd`
// into an answer (dane.ts, decide.ts), monitoring into alerts.
import { mapLimit } from '../common/limit.js';
import type { Resolver } from '../dns/resolver.js';
import { gatherHost, type HostView } from './host.js';
import { gatherMx, type MxView } from './mx.js';

export interface SendingPath {
  mx: MxView;
  /** One per host of `mx.hosts`, in the same order; empty when the hosts were not looked up. */
  hosts: HostView[];
}

export interface GatherOptions {
  /**
   * `sender` (policyd): only the lookups an RFC 7672 §2.2 sender makes: no hosts of an MX RRset that is
   * not DNSSEC-secure (§2.2.1), no TLSA lookup for a host whose addresses are not secure (§2.2.2).
   * `audit` (check, the default): every host and its TLSA records too, to report what senders ignore.
   * The DANE verdict is the same either way.
   */
  scope?: 'sender' | 'audit';
}

/** MX hosts looked up at once. */
const HOST_CONCURRENCY = 4;

/** Gather the path. Never rejects: failures are data (DnsFailure). */
export async function gatherSendingPath(
  resolver: Resolver,
  domain: string,
  options: GatherOptions = {},
): Promise<SendingPath> {
  const mx = await gatherMx(resolver, domain);
  const audit = options.scope !== 'sender';
  if ((!mx.secure && !audit) || mx.hosts.length === 0) return { mx, hosts: [] };
  const hosts = await mapLimit(mx.hosts, HOST_CONCURRENCY, (h) =>
    gatherHost(resolver, h, { tlsaOfInsecureHost: audit }),
  );
  return { mx, hosts };
}
