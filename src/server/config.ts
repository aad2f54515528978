// Settings of `mxguard serve`: built-in defaults, then the JSON config file, then MXGUARD_* environment
// variables, then command-line options (each later source overrides the earlier ones, key by key;
// docs/serve.md). Every source is validated with the same zod schema; an error names the source (the
// file, the variable or the option) and the key. Also the pino logger, with secrets redacted.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import pino, { type DestinationStream, type Logger } from 'pino';
import { z } from 'zod';
import { formatHostPort, type HostPort, isLoopbackHost, parseHostPort } from '../common/host-port.js';
import { hostNameProblem } from '../common/hostname.js';
import { DEFAULT_DATA_DIR } from '../store/index.js';
import { MIN_PASSWORD_LENGTH } from './auth.js';
import type { ServeConfig } from './context.js';
import { adminHostName, policyDomainForHost } from './hosts.js';
import { DECODER_DEFAULTS } from './report-decoder.js';
import { DEFAULT_REPORT_RETENTION_DAYS } from './retention.js';

export interface CertificateFiles {
  /** PEM certificate chain, leaf first (certbot's fullchain.pem). */
  cert: string;
  /** PEM private key. */
  key: string;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Fastify's trustProxy: false, true (any proxy), or the proxy addresses/CIDRs to trust. */
export type TrustProxy = boolean | string[];

/** Everything serve needs: the shared ServeConfig plus what only the server runtime reads. */
export interface ServeSettings extends ServeConfig {
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
  network: { resolver: string[]; caFile: string[]; allowPrivate: boolean; timeoutSeconds: number };
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
export const LETSENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';
export const DEFAULT_RENEW_DAYS = 30;

/** The environment variables serve reads, and the key each one sets. */
export const ENV_KEYS = {
  MXGUARD_DATA_DIR: 'dataDir',
  MXGUARD_LISTEN: 'listen',
  MXGUARD_TLS_LISTEN: 'tlsListen',
  MXGUARD_SMTP_LISTEN: 'smtpListen',
  MXGUARD_WORKERS: 'workers',
  MXGUARD_LOG_LEVEL: 'logLevel',
  MXGUARD_TRUST_PROXY: 'trustProxy',
  MXGUARD_ADMIN_HOSTS: 'adminHosts',
  MXGUARD_METRICS_LISTEN: 'metricsListen',
  MXGUARD_ADMIN_PASSWORD: 'adminPassword',
  MXGUARD_IMAP_PASSWORD: 'imap.password',
  MXGUARD_ACME_EMAIL: 'acme.email',
  MXGUARD_REPORT_RETENTION_DAYS: 'retention.reportDays',
} as const;
/** The config file when --config is not given. */
export const CONFIG_ENV = 'MXGUARD_CONFIG';

/** A config problem; `problems` has one line per wrong key, each naming where it came from. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

// ---- the schema every source is checked against ----

const hostPort = z.string().transform((text, ctx) => {
  const parsed = parseHostPort(text);
  if (parsed) return parsed;
  ctx.addIssue({
    code: 'custom',
    message: `expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080), got "${text}"`,
  });
  return z.NEVER;
});

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

const SettingsSchema = z
  .object({
    dataDir: path,
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
    resolver: z.array(z.string().min(1)),
    caFile: z.array(path),
    allowPrivate: z.boolean(),
    timeout: z.int().min(1).max(3600),
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
  })
  .partial()
  .strict();

type Layer = z.infer<typeof SettingsSchema>;

/** Options of `mxguard serve` as commander gives them; only those the user actually set. */
export interface CliSettings {
  dataDir?: string;
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

/** Read, validate and merge every source; throws ConfigError listing every problem. */
export function loadServeSettings(input: LoadInput): ServeSettings {
  const problems: string[] = [];
  const configPath = input.cli.config ?? nonEmpty(input.env[CONFIG_ENV]);
  let fileLayer: Layer = {};
  let configFile: string | undefined;
  if (configPath !== undefined) {
    configFile = resolve(input.cwd, configPath);
    fileLayer = readConfigFile(configFile, problems);
  }
  const envLayer = envSettings(input.env, input.cwd, problems);
  const cliLayer = cliSettings(input.cli, input.cwd, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  const merged = mergeLayers([fileLayer, envLayer, cliLayer]);
  const settings = complete(merged, input.cwd, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  settings.configFile = configFile;
  return settings;
}

function readConfigFile(file: string, problems: string[]): Layer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    return {};
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    problems.push(`${file}: not valid JSON: ${(err as Error).message}`);
    return {};
  }
  const layer = check(raw, (key) => (key === '' ? file : `${file}: ${key}`), problems);
  return resolvePaths(layer, dirname(file));
}

function envSettings(env: NodeJS.ProcessEnv, cwd: string, problems: string[]): Layer {
  const raw: Record<string, unknown> = {};
  const names = new Map<string, string>();
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const value = nonEmpty(env[name]);
    if (value === undefined) continue;
    names.set(key, name);
    setPath(raw, key, coerce(key, value));
  }
  const layer = check(raw, (key) => `${names.get(key) ?? names.get(key.split('.')[0]!) ?? key}`, problems);
  return resolvePaths(layer, cwd);
}

function cliSettings(cli: CliSettings, cwd: string, problems: string[]): Layer {
  const raw: Record<string, unknown> = {};
  const names = new Map<string, string>();
  const options: Array<[keyof CliSettings, string]> = [
    ['dataDir', '--data-dir'],
    ['listen', '--listen'],
    ['tlsListen', '--tls-listen'],
    ['smtpListen', '--smtp-listen'],
    ['workers', '--workers'],
    ['logLevel', '--log-level'],
    ['trustProxy', '--trust-proxy'],
    ['adminHosts', '--admin-host'],
    ['metricsListen', '--metrics-listen'],
    ['resolver', '--resolver'],
    ['caFile', '--ca-file'],
    ['allowPrivate', '--allow-private'],
    ['timeout', '--timeout'],
  ];
  for (const [key, option] of options) {
    const value = cli[key];
    if (value === undefined) continue;
    names.set(key, option);
    raw[key] = typeof value === 'string' ? coerce(key, value) : value;
  }
  const layer = check(raw, (key) => names.get(key.split('.')[0]!) ?? key, problems);
  return resolvePaths(layer, cwd);
}

/** Text from the environment or the command line, as the type the schema wants for `key`. */
function coerce(key: string, value: string): unknown {
  switch (key) {
    case 'workers':
    case 'timeout':
    case 'retention.reportDays':
      return /^\d+$/.test(value) ? Number(value) : value;
    case 'trustProxy':
      if (value === 'true') return true;
      if (value === 'false') return false;
      return commaList(value);
    case 'adminHosts':
      return commaList(value);
    default:
      return value;
  }
}

/** "a, b,c" -> ["a", "b", "c"]. */
function commaList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function check(raw: unknown, where: (key: string) => string, problems: string[]): Layer {
  const result = SettingsSchema.safeParse(raw);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    const key = issue.path.map(String).join('.');
    problems.push(`${where(key)}: ${describeIssue(issue)}`);
  }
  return {};
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  }
  return issue.message;
}

/** Paths in a layer are relative to its source: the config file's folder, or the working directory. */
function resolvePaths(layer: Layer, base: string): Layer {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const files = (f: CertificateFiles): CertificateFiles => ({ cert: abs(f.cert), key: abs(f.key) });
  const out: Layer = { ...layer };
  if (out.dataDir !== undefined) out.dataDir = abs(out.dataDir);
  if (out.caFile !== undefined) out.caFile = out.caFile.map(abs);
  if (out.defaultCertificate !== undefined) out.defaultCertificate = files(out.defaultCertificate);
  if (out.certificates !== undefined) {
    out.certificates = Object.fromEntries(Object.entries(out.certificates).map(([h, f]) => [h, files(f)]));
  }
  if (out.acme?.caFile !== undefined) out.acme = { ...out.acme, caFile: abs(out.acme.caFile) };
  return out;
}

function mergeLayers(layers: Layer[]): Layer {
  const merged: Layer = {};
  for (const layer of layers) {
    const { intake, smtp, imap, acme, certificates, ...flat } = layer;
    Object.assign(merged, flat);
    if (intake) merged.intake = { ...merged.intake, ...intake };
    if (smtp) merged.smtp = { ...merged.smtp, ...smtp };
    if (imap) merged.imap = { ...merged.imap, ...imap };
    if (acme) merged.acme = { ...merged.acme, ...acme };
    if (certificates) merged.certificates = { ...merged.certificates, ...certificates };
  }
  const metrics = layers.flatMap((layer) => (layer.metrics ? [layer.metrics] : []));
  if (metrics.length > 0) merged.metrics = Object.assign({}, ...metrics);
  const retention = layers.flatMap((layer) => (layer.retention ? [layer.retention] : []));
  if (retention.length > 0) merged.retention = Object.assign({}, ...retention);
  return merged;
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
    network: {
      resolver: m.resolver ?? [],
      caFile: m.caFile ?? [],
      allowPrivate: m.allowPrivate ?? false,
      timeoutSeconds: m.timeout ?? 30,
    },
    retention: { reportDays: m.retention?.reportDays ?? DEFAULT_REPORT_RETENTION_DAYS },
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

// ---- small helpers ----

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

function setPath(target: Record<string, unknown>, key: string, value: unknown): void {
  const [head, tail] = key.split('.') as [string, string | undefined];
  if (tail === undefined) {
    target[head] = value;
    return;
  }
  target[head] ??= {};
  (target[head] as Record<string, unknown>)[tail] = value;
}

// ---- logging ----

/** Keys whose values never reach a log line (pino redaction paths). */
export const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'adminPassword',
  '*.adminPassword',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers.cookie',
];

/** The JSON logger of serve (stdout unless `destination` is given), secrets redacted. */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** The settings as they may be shown or logged: passwords replaced. */
export function describeSettings(settings: ServeSettings): Record<string, unknown> {
  return {
    ...settings,
    adminPassword: settings.adminPassword === undefined ? undefined : '[redacted]',
    imap: settings.imap ? { ...settings.imap, password: '[redacted]' } : undefined,
  };
}
