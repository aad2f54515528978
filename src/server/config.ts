// Settings of `mxguard serve`: built-in defaults, then the JSON config file, then MXGUARD_* environment
// variables, then command-line options (each later source overrides the earlier ones, key by key;
// docs/serve.md), read by the shared loader (src/config/load.ts) against serve's zod schema; an error
// names the source (the file, the variable or the option) and the key. Then the defaults and the rules
// that span several keys.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { formatHostPort, type HostPort, isLoopbackHost } from '../common/host-port.js';
import { hostNameProblem } from '../common/hostname.js';
import {
  booleanText,
  ConfigError,
  type ConfigSpec,
  commaList,
  configFileVariable,
  hostPort,
  loadConfig,
  numberText,
  wholeNumber,
} from '../config/load.js';
import { LOG_LEVELS, type LogLevel } from '../config/log.js';
import { NETWORK_KEYS, NETWORK_OPTIONS, type NetworkSettings, networkSettings } from '../config/network.js';
import { parseResolverOption } from '../dns/resolvconf.js';
import { DnsUpdateError, parseTsigKey } from '../dns/update.js';
import { DEFAULT_MONITOR_SETTINGS, type MonitorSettings } from '../monitor/settings.js';
import {
  chooseDatabase,
  DEFAULT_DATA_DIR,
  databaseProblem,
  describeDatabase,
  resolveDatabasePath,
  StoreError,
} from '../store/index.js';
import { MAX_RECENT_CHECK_RUNS } from '../store/monitor-types.js';
import { MIN_PASSWORD_LENGTH } from './auth.js';
import type { IdPublisher, IdPublishers, ServeConfig } from './context.js';
import { adminHostName, policyDomainForHost } from './hosts.js';
import { DECODER_DEFAULTS } from './report-decoder.js';
import { DEFAULT_REPORT_RETENTION_DAYS } from './retention.js';

export interface CertificateFiles {
  /** PEM certificate chain, leaf first (certbot's fullchain.pem). */
  cert: string;
  /** PEM private key. */
  key: string;
}

export { createLogger, LOG_LEVELS, type LogLevel, REDACT_PATHS } from '../config/log.js';
export { ConfigError };

/** Fastify's trustProxy: false, true (any proxy), or the proxy addresses/CIDRs to trust. */
export type TrustProxy = boolean | string[];

/** Everything serve needs: the shared ServeConfig plus what only the server runtime reads. */
export interface ServeSettings extends ServeConfig {
  /**
   * The database (src/store/index.ts chooseDatabase: --database > MXGUARD_DATABASE_URL > config
   * `database`): a postgres:// URL or an absolute SQLite file path; undefined = <dataDir>/mxguard.sqlite.
   */
  database?: string;
  /** Processes serving HTTP (node:cluster workers); 1 = everything in one process. */
  workers: number;
  logLevel: LogLevel;
  /** Take the client address from X-Forwarded-For when the request comes from a trusted proxy. */
  trustProxy: TrustProxy;
  /** The admin password (config file or MXGUARD_ADMIN_PASSWORD); never logged. */
  adminPassword?: string;
  /** Certificates by host name (mta-sts.<domain>), on top of <dataDir>/certs/<host>/. */
  certificates: Record<string, CertificateFiles>;
  /** Certificate for handshakes whose SNI names no known host; without it they are refused. */
  defaultCertificate?: CertificateFiles;
  /** Live lookups (the published _mta-sts id): the common network options. */
  network: NetworkSettings;
  /** The config file read, if any (absolute). */
  configFile?: string;
  /**
   * Reports starting more than reportDays days ago are deleted (src/server/retention.ts); 0 = never.
   * Default DEFAULT_REPORT_RETENTION_DAYS.
   */
  retention?: { reportDays: number };
  /** GET /metrics without login on its own listener (loopback unless metrics.allowNonLoopback). */
  metricsListen?: HostPort;
  /** domainLabels: label counters by policy domain / host name; allowNonLoopback: for metricsListen. */
  metrics?: { domainLabels: boolean; allowNonLoopback: boolean };
  /** Scheduled checks of the watched domains and alerts (docs/monitoring.md); defaults when absent. */
  monitor?: MonitorSettings;
}

export const DEFAULT_LISTEN: HostPort = { host: '127.0.0.1', port: 8080 };
export const DEFAULT_INTAKE: ServeConfig['intake'] = {
  maxBytes: 10 * 1024 * 1024,
  // As large as maxBytes: more is never a real report (src/tlsrpt/parse.ts).
  maxDecompressedBytes: 10 * 1024 * 1024,
  ratePerMinute: 60,
  acceptUnsigned: false,
  decodeThreads: DECODER_DEFAULTS.threads,
  decodeQueue: DECODER_DEFAULTS.queue,
  decodeTimeoutSeconds: DECODER_DEFAULTS.timeoutSeconds,
};
/**
 * SMTP receiver limits (docs/serve.md "SMTP intake limits"): enough for every real sender of TLS-RPT
 * mail (one report per policy domain per day, sent in well under a second), too little for one client
 * to hold the receiver.
 */
export const DEFAULT_SMTP_LIMITS: NonNullable<ServeConfig['smtpLimits']> = {
  maxClients: 50,
  maxConnectionsPerClient: 5,
  reservedForNewClients: 10,
  idleSeconds: 60,
  dataSeconds: 300,
  maxIdleCommands: 10,
  messagesPerMinute: 30,
};
export const DEFAULT_IMAP = {
  port: 993,
  secure: true,
  mailbox: 'INBOX',
  processedMailbox: 'TLS-RPT processed',
  intervalSeconds: 300,
};
/** TTL of the `_mta-sts` TXT record serve publishes by DNS UPDATE, unless dnsUpdate.*.ttl says otherwise. */
export const DEFAULT_ID_TTL = 300;
export const LETSENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';
export const DEFAULT_RENEW_DAYS = 30;

/** Prefix of serve's environment variables: MXGUARD_ + the key (MXGUARD_TLS_LISTEN for tlsListen). */
export const ENV_PREFIX = 'MXGUARD_';
/** The keys serve reads from the environment. */
const ENV_KEYS = [
  'dataDir',
  'listen',
  'tlsListen',
  'smtpListen',
  'workers',
  'logLevel',
  'trustProxy',
  'adminHosts',
  'metricsListen',
  'adminPassword',
  'imap.password',
  'acme.email',
  ['retention.reportDays', 'MXGUARD_REPORT_RETENTION_DAYS'],
  'monitor.enabled',
  ['monitor.intervalSeconds', 'MXGUARD_MONITOR_INTERVAL'],
  ['monitor.webhooks', 'MXGUARD_ALERT_WEBHOOK'],
  'monitor.email.password',
  ['monitor.dashboardUrl', 'MXGUARD_DASHBOARD_URL'],
] as const;
/** The config file when --config is not given: MXGUARD_CONFIG. */
export const CONFIG_ENV = configFileVariable(ENV_PREFIX);

// ---- the schema every source is checked against ----

const path = z.string().min(1, 'must not be empty');
const certificateFiles = z.object({ cert: path, key: path }).strict();
const hostName = z
  .string()
  .refine((name) => name.includes('.') && hostNameProblem(name) === undefined, 'expected a host name');

// proxy-addr's forms: an address, a CIDR, or one of its names for address ranges.
const proxyAddress = z.string().refine((text) => {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(text)) return true;
  const [address, bits, extra] = text.split('/');
  if (extra !== undefined || address === undefined || isIP(address) === 0) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (isIP(address) === 4 ? 32 : 128));
}, 'expected an IP address, a CIDR (10.0.0.0/8) or loopback, linklocal, uniquelocal');

// adminHosts: a host name or an IP address, never a policy host (those never show the dashboard).
const adminHost = z.string().transform((text, ctx) => {
  const name = adminHostName(text);
  if (name !== undefined && policyDomainForHost(name) === undefined) return name;
  const message =
    name === undefined
      ? `expected a host name or an IP address, got "${text}"`
      : `"${text}" is a policy host name (mta-sts.<domain>), which never shows the dashboard`;
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
});

// dnsUpdate.domains.<domain> / dnsUpdate.default: where the `_mta-sts` id is published (publish-id.ts).
const idPublisherSchema = z
  .object({
    server: z.string().transform((text, ctx) => {
      try {
        return parseResolverOption(text);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
    tsigKey: path,
    zone: hostName,
    ttl: wholeNumber(1, 86_400),
  })
  .partial({ zone: true, ttl: true })
  .strict();
type IdPublisherLayer = z.infer<typeof idPublisherSchema>;

const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' });

// monitor.*: the keys of src/monitor/settings.ts MonitorSettings.
const monitorSchema = z
  .object({
    enabled: z.boolean(),
    intervalSeconds: wholeNumber(60, 604_800),
    concurrency: wholeNumber(1, 64),
    historyDays: wholeNumber(0, 36_500),
    // Damping reads the last N runs, and the store gives at most MAX_RECENT_CHECK_RUNS of them.
    failChecks: wholeNumber(1, MAX_RECENT_CHECK_RUNS),
    warnChecks: wholeNumber(1, MAX_RECENT_CHECK_RUNS),
    expiryDays: wholeNumber(0, 365),
    tlsrptFailureRate: z.number().min(0).max(1),
    tlsrptMinSessions: wholeNumber(1, 1_000_000_000),
    webhooks: z.array(
      z
        .object({ url: httpUrl, secret: z.string().min(1) })
        .partial({ secret: true })
        .strict(),
    ),
    email: z
      .object({
        host: z.string().min(1),
        port: wholeNumber(1, 65535),
        security: z.enum(['starttls', 'tls', 'none']),
        user: z.string().min(1),
        password: z.string().min(1),
        from: z.email(),
        to: z.array(z.email()).min(1),
      })
      .partial()
      .strict(),
    dashboardUrl: httpUrl,
  })
  .partial()
  .strict();

// database: a postgres:// URL or a SQLite file path (src/store/index.ts says what is wrong with one).
const database = z.string().superRefine((text, ctx) => {
  const problem = databaseProblem(text);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

const SettingsSchema = z
  .object({
    dataDir: path,
    database,
    listen: hostPort,
    tlsListen: hostPort,
    smtpListen: hostPort,
    workers: z.int().min(1).max(64),
    logLevel: z.enum(LOG_LEVELS),
    trustProxy: z.union([z.boolean(), z.array(proxyAddress).min(1)]),
    adminHosts: z.array(adminHost),
    metricsListen: hostPort,
    metrics: z.object({ domainLabels: z.boolean(), allowNonLoopback: z.boolean() }).partial().strict(),
    adminPassword: z
      .string()
      .min(MIN_PASSWORD_LENGTH, `must have at least ${MIN_PASSWORD_LENGTH} characters`),
    ...NETWORK_KEYS,
    certificates: z.record(hostName, certificateFiles),
    defaultCertificate: certificateFiles,
    intake: z
      .object({
        maxBytes: z.int().min(1024),
        maxDecompressedBytes: z.int().min(1024),
        ratePerMinute: z.int().min(1),
        acceptUnsigned: z.boolean(),
        decodeThreads: z.int().min(0).max(64),
        decodeQueue: z.int().min(0).max(10_000),
        decodeTimeoutSeconds: z.int().min(1).max(3600),
        otherDomains: z.enum(['keep', 'refuse']),
      })
      .partial()
      .strict(),
    smtp: z
      .object({
        maxClients: z.int().min(1).max(10_000),
        maxConnectionsPerClient: z.int().min(1),
        reservedForNewClients: z.int().min(0),
        idleSeconds: z.int().min(1).max(3600),
        dataSeconds: z.int().min(1).max(3600),
        maxIdleCommands: z.int().min(1),
        messagesPerMinute: z.int().min(1),
      })
      .partial()
      .strict(),
    imap: z
      .object({
        host: z.string().min(1),
        port: z.int().min(1).max(65535),
        secure: z.boolean(),
        user: z.string().min(1),
        password: z.string().min(1),
        mailbox: z.string().min(1),
        processedMailbox: z.string().min(1),
        intervalSeconds: z.int().min(10),
      })
      .partial()
      .strict(),
    acme: z
      .object({
        directoryUrl: z.url({ protocol: /^https?$/ }),
        email: z.email(),
        renewDaysBefore: z.int().min(1).max(60),
        caFile: path,
      })
      .partial()
      .strict(),
    retention: z
      .object({ reportDays: z.int('expected a whole number of days').min(0).max(36500) })
      .partial()
      .strict(),
    monitor: monitorSchema,
    dnsUpdate: z
      .object({
        domains: z.record(z.string(), idPublisherSchema),
        default: idPublisherSchema,
      })
      .partial()
      .strict(),
  })
  .partial()
  .strict();

type Layer = z.infer<typeof SettingsSchema>;

/** Options of `mxguard serve` as commander gives them; only those the user actually set. */
export interface CliSettings {
  dataDir?: string;
  /** --database (the environment's MXGUARD_DATABASE_URL is read by chooseDatabase). */
  database?: string;
  listen?: string;
  tlsListen?: string;
  smtpListen?: string;
  config?: string;
  workers?: string;
  logLevel?: string;
  trustProxy?: string;
  /** --admin-host values joined with commas. */
  adminHosts?: string;
  metricsListen?: string;
  monitorInterval?: string;
  /** --alert-webhook values joined with commas. */
  alertWebhooks?: string;
  resolver?: string[];
  caFile?: string[];
  allowPrivate?: boolean;
  timeout?: string;
}

export interface LoadInput {
  cli: CliSettings;
  env: NodeJS.ProcessEnv;
  /** Relative paths on the command line and in the environment are relative to this. */
  cwd: string;
}

const SERVE_CONFIG: ConfigSpec<Layer> = {
  schema: SettingsSchema,
  envPrefix: ENV_PREFIX,
  envKeys: ENV_KEYS,
  options: {
    dataDir: '--data-dir',
    listen: '--listen',
    tlsListen: '--tls-listen',
    smtpListen: '--smtp-listen',
    workers: '--workers',
    logLevel: '--log-level',
    trustProxy: '--trust-proxy',
    adminHosts: '--admin-host',
    metricsListen: '--metrics-listen',
    'monitor.intervalSeconds': '--monitor-interval',
    'monitor.webhooks': '--alert-webhook',
    ...NETWORK_OPTIONS,
  },
  fromText,
  resolvePaths,
};

/** Read, validate and merge every source; throws ConfigError listing every problem. */
export function loadServeSettings(input: LoadInput): ServeSettings {
  const { config, monitorInterval, alertWebhooks, database, ...rest } = input.cli;
  const options = {
    ...rest,
    'monitor.intervalSeconds': monitorInterval,
    'monitor.webhooks': alertWebhooks,
  };
  const loaded = loadConfig(SERVE_CONFIG, { options, configFile: config, env: input.env, cwd: input.cwd });
  const problems: string[] = [];
  const settings = complete(loaded.merged, input.cwd, problems);
  try {
    const chosen = chooseDatabase({
      option: database,
      env: input.env,
      config: loaded.merged.database,
      configFile: loaded.configFile,
    });
    if (chosen !== undefined) settings.database = resolveDatabasePath(chosen, input.cwd);
  } catch (err) {
    if (!(err instanceof StoreError)) throw err;
    problems.push(err.message);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  settings.configFile = loaded.configFile;
  return settings;
}

/** Text from the environment or the command line, as the type the schema wants for `key`. */
function fromText(key: string, value: string): unknown {
  switch (key) {
    case 'workers':
    case 'timeout':
    case 'retention.reportDays':
    case 'monitor.intervalSeconds':
      return numberText(value);
    case 'monitor.enabled':
      return booleanText(value);
    case 'monitor.webhooks':
      return commaList(value).map((url) => ({ url }));
    case 'trustProxy': {
      const flag = booleanText(value);
      return typeof flag === 'boolean' ? flag : commaList(value);
    }
    case 'adminHosts':
      return commaList(value);
    default:
      return value;
  }
}

/** Paths in a layer are relative to its source: the config file's folder, or the working directory. */
function resolvePaths(layer: Layer, abs: (path: string) => string): Layer {
  const files = (f: CertificateFiles): CertificateFiles => ({ cert: abs(f.cert), key: abs(f.key) });
  const out: Layer = { ...layer };
  if (out.dataDir !== undefined) out.dataDir = abs(out.dataDir);
  if (out.database !== undefined) out.database = resolveDatabasePath(out.database, abs('.'));
  if (out.caFile !== undefined) out.caFile = out.caFile.map(abs);
  if (out.defaultCertificate !== undefined) out.defaultCertificate = files(out.defaultCertificate);
  if (out.certificates !== undefined) {
    out.certificates = Object.fromEntries(Object.entries(out.certificates).map(([h, f]) => [h, files(f)]));
  }
  if (out.acme?.caFile !== undefined) out.acme = { ...out.acme, caFile: abs(out.acme.caFile) };
  if (out.dnsUpdate !== undefined) {
    const keyPath = (p: IdPublisherLayer): IdPublisherLayer => ({ ...p, tsigKey: abs(p.tsigKey) });
    const { domains, default: fallback } = out.dnsUpdate;
    out.dnsUpdate = {
      ...(domains && {
        domains: Object.fromEntries(Object.entries(domains).map(([d, p]) => [d, keyPath(p)])),
      }),
      ...(fallback && { default: keyPath(fallback) }),
    };
  }
  return out;
}

function complete(m: Layer, cwd: string, problems: string[]): ServeSettings {
  const certificates = Object.fromEntries(
    Object.entries(m.certificates ?? {}).map(([host, files]) => [host.toLowerCase(), files]),
  );
  const smtpLimits = { ...DEFAULT_SMTP_LIMITS, ...m.smtp };
  const settings: ServeSettings = {
    dataDir: m.dataDir ?? resolve(cwd, DEFAULT_DATA_DIR),
    listen: m.listen ?? DEFAULT_LISTEN,
    tlsListen: m.tlsListen,
    smtp: m.smtpListen,
    smtpLimits,
    intake: { ...DEFAULT_INTAKE, ...m.intake },
    workers: m.workers ?? Math.min(2, availableParallelism()),
    logLevel: m.logLevel ?? 'info',
    trustProxy: m.trustProxy ?? false,
    adminHosts: m.adminHosts ?? [],
    metricsListen: m.metricsListen,
    metrics: { domainLabels: false, allowNonLoopback: false, ...m.metrics },
    adminPassword: m.adminPassword,
    certificates,
    defaultCertificate: m.defaultCertificate,
    network: networkSettings(m),
    retention: { reportDays: m.retention?.reportDays ?? DEFAULT_REPORT_RETENTION_DAYS },
    monitor: monitorSettings(m.monitor, problems),
    dnsUpdate: idPublishers(m.dnsUpdate, problems),
  };
  if (smtpLimits.reservedForNewClients >= smtpLimits.maxClients) {
    problems.push(
      `smtp.reservedForNewClients: must be less than smtp.maxClients (${smtpLimits.maxClients}), or no client gets in`,
    );
  }
  // metricsListen answers without login: only on loopback unless the operator says otherwise.
  if (
    settings.metricsListen &&
    !isLoopbackHost(settings.metricsListen.host) &&
    !settings.metrics?.allowNonLoopback
  ) {
    problems.push(
      `metricsListen: ${formatHostPort(settings.metricsListen)} is not a loopback address, and /metrics there needs no login: listen on 127.0.0.1 or ::1, or set metrics.allowNonLoopback: true (and firewall it)`,
    );
  }
  // MXGUARD_IMAP_PASSWORD alone does not turn IMAP polling on: any other imap key does.
  const { password, ...imapRest } = m.imap ?? {};
  if (Object.keys(imapRest).length > 0) {
    const imap = { ...DEFAULT_IMAP, ...imapRest, password };
    for (const key of ['host', 'user', 'password'] as const) {
      if (imap[key] === undefined) {
        const hint = key === 'password' ? ' (in the config file or MXGUARD_IMAP_PASSWORD)' : '';
        problems.push(`imap.${key}: missing${hint}; IMAP polling needs host, user and password`);
      }
    }
    if (imap.host !== undefined && imap.user !== undefined && imap.password !== undefined) {
      settings.imap = { ...imap, host: imap.host, user: imap.user, password: imap.password };
    }
  }
  if (m.acme !== undefined) {
    const acme = m.acme;
    if (acme.email === undefined) {
      problems.push(
        'acme.email: missing (in the config file or MXGUARD_ACME_EMAIL); the ACME account needs one',
      );
    }
    if (settings.tlsListen === undefined) {
      problems.push(
        'acme: certificates are only used by the HTTPS listener: set tlsListen (or --tls-listen) too',
      );
    }
    if (acme.email !== undefined) {
      settings.acme = {
        directoryUrl: acme.directoryUrl ?? LETSENCRYPT_DIRECTORY,
        email: acme.email,
        renewDaysBefore: acme.renewDaysBefore ?? DEFAULT_RENEW_DAYS,
        caFile: acme.caFile,
      };
    }
  }
  return settings;
}

/** dnsUpdate.*: each key file read now, so a bad one stops serve at start, naming the key and the domain. */
function idPublishers(m: Layer['dnsUpdate'], problems: string[]): IdPublishers | undefined {
  if (m === undefined || (m.default === undefined && Object.keys(m.domains ?? {}).length === 0))
    return undefined;
  const publisher = (p: IdPublisherLayer, key: string): IdPublisher | undefined => {
    try {
      const tsigKey = parseTsigKey(readFileSync(p.tsigKey, 'utf8'), p.tsigKey);
      return { server: p.server, key: tsigKey, zone: p.zone, ttl: p.ttl ?? DEFAULT_ID_TTL };
    } catch (err) {
      if (!(err instanceof DnsUpdateError) && !(err instanceof Error && 'errno' in err)) throw err;
      const why =
        err instanceof DnsUpdateError
          ? err.message
          : `cannot read TSIG key file ${p.tsigKey}: ${err.message}`;
      problems.push(`${key}.tsigKey: ${why}`);
      return undefined;
    }
  };
  const domains: Record<string, IdPublisher> = {};
  for (const [domain, p] of Object.entries(m.domains ?? {})) {
    const name = domain.toLowerCase().replace(/\.$/, '');
    if (!hostName.safeParse(name).success) {
      problems.push(`dnsUpdate.domains: "${domain}": expected a domain name`);
      continue;
    }
    const found = publisher(p, `dnsUpdate.domains.${domain}`);
    if (found) domains[name] = found;
  }
  const fallback = m.default && publisher(m.default, 'dnsUpdate.default');
  return { domains, ...(fallback && { default: fallback }) };
}

/** monitor.*: the defaults, and e-mail only with everything it needs. */
function monitorSettings(m: Layer['monitor'], problems: string[]): MonitorSettings {
  const { email, ...rest } = m ?? {};
  const settings: MonitorSettings = { ...DEFAULT_MONITOR_SETTINGS, ...rest };
  // MXGUARD_MONITOR_EMAIL_PASSWORD alone does not turn alert mail on: any other email key does.
  const { password, ...emailRest } = email ?? {};
  if (Object.keys(emailRest).length > 0) {
    const missing = (['host', 'from', 'to'] as const).filter((k) => emailRest[k] === undefined);
    for (const key of missing)
      problems.push(`monitor.email.${key}: missing; alert mail needs host, from and to`);
    if (emailRest.user !== undefined && password === undefined) {
      problems.push(
        'monitor.email.password: missing (in the config file or MXGUARD_MONITOR_EMAIL_PASSWORD); monitor.email.user is set',
      );
    }
    if (emailRest.host !== undefined && emailRest.from !== undefined && emailRest.to !== undefined) {
      const security = emailRest.security ?? 'starttls';
      settings.email = {
        host: emailRest.host,
        port: emailRest.port ?? (security === 'tls' ? 465 : 587),
        security,
        from: emailRest.from,
        to: emailRest.to,
        ...(emailRest.user === undefined ? {} : { user: emailRest.user }),
        ...(password === undefined ? {} : { password }),
      };
    }
  }
  return settings;
}

/** A webhook URL as it may be logged: its path and query can be the secret (Slack, Teams), so only the origin. */
function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    return u.pathname === '/' && u.search === '' ? u.origin : `${u.origin}/[redacted]`;
  } catch {
    return '[redacted]';
  }
}

/** The settings as they may be shown or logged: passwords, webhook secrets and webhook paths replaced. */
export function describeSettings(settings: ServeSettings): Record<string, unknown> {
  const monitor = settings.monitor;
  return {
    ...settings,
    database: settings.database === undefined ? undefined : describeDatabase(settings.database),
    adminPassword: settings.adminPassword === undefined ? undefined : '[redacted]',
    imap: settings.imap ? { ...settings.imap, password: '[redacted]' } : undefined,
    dnsUpdate: settings.dnsUpdate && redactedPublishers(settings.dnsUpdate),
    monitor: monitor && {
      ...monitor,
      webhooks: monitor.webhooks.map((w) => ({
        url: redactedUrl(w.url),
        ...(w.secret === undefined ? {} : { secret: '[redacted]' }),
      })),
      email: monitor.email && {
        ...monitor.email,
        ...(monitor.email.password === undefined ? {} : { password: '[redacted]' }),
      },
    },
  };
}

/** The DNS UPDATE publishers without their TSIG secrets (the key name stays). */
function redactedPublishers(publishers: IdPublishers): Record<string, unknown> {
  const shown = ({ key, ...rest }: IdPublisher) => ({ ...rest, key: `${key.name} (${key.algorithm})` });
  return {
    domains: Object.fromEntries(Object.entries(publishers.domains).map(([d, p]) => [d, shown(p)])),
    ...(publishers.default && { default: shown(publishers.default) }),
  };
}
