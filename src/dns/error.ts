// Usage errors of the DNS layer (bad resolver spec, bad client options, unreadable resolv.conf).
// Lookups never throw: they return a DnsResult whose `outcome` says what happened.

export type DnsErrorCode = 'DNS_BAD_RESOLVER' | 'DNS_BAD_OPTIONS' | 'DNS_RESOLV_CONF';

export class DnsError extends Error {
  readonly code: DnsErrorCode;

  constructor(code: DnsErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'DnsError';
    this.code = code;
  }
}
