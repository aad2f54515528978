// What every part of `mxguard serve` is handed: the store, the validated config, logging, metrics,
// the live-lookup network settings and the clock. Built once by src/server/start.ts.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Resolver } from '../dns/resolver.js';
import type { TsigKey, UpdateServer } from '../dns/update.js';
import type { MonitorControl } from '../monitor/monitor.js';
import type { Store } from '../store/types.js';
import type { ReportDecoder } from './report-decoder.js';

export interface ServeConfig {
  /** Where the SQLite database, certificates and ACME state live (default ./data). */
  dataDir: string;
  /** Plain HTTP listener (policy hosting behind a proxy, API, dashboard, intake); default 127.0.0.1:8080. */
  listen: { host: string; port: number };
  /** HTTPS listener with per-domain certificates chosen by SNI; off unless given. */
  tlsListen?: { host: string; port: number };
  /**
   * Host names on which the dashboard and API answer besides the listen hosts, localhost, 127.0.0.1
   * and [::1] (hosts.ts); lowercase, IPv6 in brackets. Unset = none.
   */
  adminHosts?: string[];
  intake: {
    /** Largest request/message accepted, in bytes (compressed). */
    maxBytes: number;
    /** Largest decompressed report, in bytes (gzip bomb guard). */
    maxDecompressedBytes: number;
    /** HTTPS intake requests per client IP per minute. */
    ratePerMinute: number;
    /** Accept mailed reports without a valid DKIM signature (RFC 8460 §3 says they must have one). */
    acceptUnsigned: boolean;
    /** Report decoder threads per process; 0 = decode on the event loop (src/server/report-decoder.ts). */
    decodeThreads?: number;
    /** Reports waiting for a decoder thread, per process, before intake answers "busy". */
    decodeQueue?: number;
    /** Longest a decoder thread may work on one input. */
    decodeTimeoutSeconds?: number;
    /**
     * Reports about domains that are not configured (a DMARC report's policy domain, or every policy
     * domain of a TLS-RPT report): 'keep' them (default; listed under "other domains") or 'refuse' them
     * (kept in the rejected list, INTAKE_OTHER_DOMAIN). By mail, IMAP and HTTPS; `reports import` keeps them.
     */
    otherDomains?: 'keep' | 'refuse';
  };
  /** Built-in SMTP receiver for rua=mailto: reports; off unless given. */
  smtp?: { host: string; port: number };
  /** Limits of the SMTP receiver (config file key `smtp`; src/server/smtp-limits.ts); defaults when absent. */
  smtpLimits?: {
    /** Sessions at once, all clients together. */
    maxClients: number;
    /** Sessions at once from one client (IPv6: one /64). */
    maxConnectionsPerClient: number;
    /** The last slots of maxClients, only for clients with no session open. */
    reservedForNewClients: number;
    /** From the greeting or the last message to the next DATA; nothing else extends it. */
    idleSeconds: number;
    /** From DATA to the end of the message. */
    dataSeconds: number;
    /** Commands that deliver nothing (NOOP, RSET, HELP, VRFY, EHLO, HELO) answered between two messages. */
    maxIdleCommands: number;
    /** Messages (MAIL FROM) per client per minute, also the burst. */
    messagesPerMinute: number;
  };
  /** IMAP mailbox polling; off unless given. Password from the config file or MXGUARD_IMAP_PASSWORD. */
  imap?: {
    host: string;
    port: number;
    secure: boolean;
    user: string;
    password: string;
    mailbox: string;
    processedMailbox: string;
    intervalSeconds: number;
  };
  /** ACME (Let's Encrypt-style) certificates for mta-sts.<domain>; off unless given. */
  acme?: { directoryUrl: string; email: string; renewDaysBefore: number; caFile?: string };
  /** DNS UPDATE of the `_mta-sts` id after a policy change (src/server/publish-id.ts); off unless given. */
  dnsUpdate?: IdPublishers;
}

/** Where and how one domain's `_mta-sts` TXT record is published by DNS UPDATE (RFC 2136 + TSIG). */
export interface IdPublisher {
  server: UpdateServer;
  /** Read from its key file when serve starts. */
  key: TsigKey;
  /** The zone to update; found by SOA lookup when absent. */
  zone?: string;
  /** TTL of the published TXT record, in seconds. */
  ttl: number;
}

/** The publishers of the config's `dnsUpdate`: per domain (lowercase, no trailing dot), else the default. */
export interface IdPublishers {
  domains: Record<string, IdPublisher>;
  default?: IdPublisher;
}

export interface ServerContext {
  store: Store;
  config: ServeConfig;
  logger: Logger;
  metrics: Registry;
  /** For live lookups (the published `_mta-sts` id, the policy host's address). */
  resolver: Resolver;
  network: {
    ca: string[];
    allowPrivate: boolean;
    timeoutMs: number;
    /** The MX and policy-host ports the monitor's checks connect to (25 and 443 unless a lab says otherwise). */
    smtpPort?: number;
    httpsPort?: number;
  };
  /** Checks of watched domains on demand, and the live check alone (src/monitor/); in every serve process. */
  monitor?: MonitorControl;
  /** Where reports are decoded (tests); default the process's pool for config.intake (report-decoder.ts). */
  reportDecoder?: ReportDecoder;
  now(): Date;
}
