// The `senders` section of `mxguard check`: what each kind of sending MTA does with mail to the domain
// today, per MX host where they differ (src/sender/outcome.ts, the decision code `policyd` answers
// with). The dane-mta-sts findings carry the socketmap reply `mxguard policyd` gives, so an audit
// predicts the daemon exactly.
import type { StsView } from '../sender/decide.js';
import {
  type Delivery,
  type HostOutcome,
  type HostTlsFacts,
  type SenderKind,
  type SenderOutcome,
  senderOutcomes,
} from '../sender/outcome.js';
import type { SendingPath } from '../sender/path.js';
import { type Finding, finding, type Status } from './types.js';

const WHO: Record<SenderKind, string> = {
  'dane-mta-sts': 'DANE-and-MTA-STS senders (Postfix with mxguard policyd, Exchange Online)',
  'mta-sts': 'MTA-STS-only senders (such as Gmail)',
  opportunistic: 'opportunistic senders (STARTTLS when offered)',
};

const VERB: Record<Delivery, string> = {
  dane: 'deliver with DANE',
  'mta-sts': 'deliver with MTA-STS',
  tls: 'deliver with unauthenticated TLS',
  plain: 'deliver in plain text',
  refuse: 'refuse',
};

export function sendersFindings(
  path: SendingPath,
  sts: StsView,
  tls: ReadonlyMap<string, HostTlsFacts>,
): Finding[] {
  return senderOutcomes(path, sts, tls).flatMap(outcomeFindings);
}

function outcomeFindings(outcome: SenderOutcome): Finding[] {
  const extra = {
    sender: outcome.sender,
    ...(outcome.answer === undefined ? {} : { answer: outcome.answer.text }),
  };
  const who = WHO[outcome.sender];
  if (outcome.none !== undefined) {
    return [{ ...finding('senders', 'info', 'SENDERS_NO_DELIVERY', `${who}: ${outcome.none}`), ...extra }];
  }
  // Hosts with the same delivery and reason become one finding.
  const groups = new Map<string, HostOutcome[]>();
  for (const h of outcome.hosts) {
    const key = `${h.delivery}\u0000${h.why}`;
    groups.set(key, [...(groups.get(key) ?? []), h]);
  }
  const refusedAll = outcome.hosts.every((h) => h.delivery === 'refuse');
  return [...groups.values()].map((hosts) => {
    const { delivery, why } = hosts[0]!;
    const names = hosts.map((h) => h.host).join(', ');
    const status = statusOf(outcome.sender, delivery, refusedAll);
    const code = `SENDERS_${delivery.toUpperCase().replace('-', '_')}`;
    const message = `${who}: ${VERB[delivery]} to ${names}: ${why}`;
    return {
      ...finding('senders', status, code, message, hosts.length === 1 ? { host: hosts[0]!.host } : {}),
      ...extra,
    };
  });
}

/** A refusal fails when no host is left, else warns (senders try the next MX); plain text warns. */
function statusOf(sender: SenderKind, delivery: Delivery, refusedAll: boolean): Status {
  switch (delivery) {
    case 'refuse':
      return refusedAll ? 'fail' : 'warn';
    case 'plain':
      return 'warn';
    case 'tls':
      return sender === 'opportunistic' ? 'pass' : 'info';
    default:
      return 'pass';
  }
}
