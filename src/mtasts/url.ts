// Where a domain's MTA-STS policy lives: RFC 8461 §3.3, https://mta-sts.<domain>/.well-known/mta-sts.txt.
import { domainToASCII } from 'node:url';
import { hostNameProblem } from '../common/hostname.js';

/** RFC 8461 §3.3: the policy's well-known path. */
export const POLICY_PATH = '/.well-known/mta-sts.txt';

/** "mta-sts.<domain>" in lower-case A-label form, or undefined when `domain` is not a host name. */
export function policyHost(domain: string): string | undefined {
  const ascii = domainToASCII(domain.trim().replace(/\.$/, '')).toLowerCase();
  const host = `mta-sts.${ascii}`;
  return hostNameProblem(ascii) === undefined && host.length <= 253 ? host : undefined;
}

/** The policy URL for a domain (RFC 8461 §3.3), or undefined when `domain` is not a host name. */
export function policyUrl(domain: string): string | undefined {
  const host = policyHost(domain);
  return host === undefined ? undefined : `https://${host}${POLICY_PATH}`;
}
