// MTA-STS (RFC 8461) policy types, shared by the policy parser (policy.ts) and MX matching
// (match.ts) so that neither imports the other's types.

export type StsMode = 'enforce' | 'testing' | 'none';

/** A policy file's content (RFC 8461 §3.2). */
export interface StsPolicy {
  mode: StsMode;
  /** Seconds a sender may cache the policy. */
  maxAge: number;
  /** `mx` patterns as written in the file (exact host names or "*.domain"). */
  mx: string[];
  /** Unknown fields, kept in file order as [name, value] (RFC 8461 §3.2: senders ignore them). */
  extensions: Array<[string, string]>;
}
