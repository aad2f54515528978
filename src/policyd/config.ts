// Settings of `mxguard policyd` (the daemon and its query/list/purge commands): built-in defaults, then
// the JSON config file (--config or MXGUARD_POLICYD_CONFIG), then MXGUARD_POLICYD_* environment
// variables, then command-line options, read by the shared loader (src/config/load.ts) in the dialect
// of serve: camelCase keys (docs/policyd.md "Settings"). The flat kebab-case keys of earlier releases
// ("data-dir") are still read, with a warning naming each and its new name, until the next release.
import { resolve } from 'node:path';
import { z } from 'zod';
import type { HostPort } from '../common/host-port.js';
import {
  ConfigError,
  type ConfigSpec,
  hostPort,
  loadConfig,
  numberText,
  wholeNumber,
} from '../config/load.js';
import { LOG_LEVELS, type LogLevel } from '../config/log.js';
import {
  NETWORK_KEYS,
  NETWORK_OPTIONS,
  type NetworkSettings,
  networkSettings,
  networkText,
} from '../config/network.js';
import { DEFAULT_DATA_DIR } from '../store/index.js';

/** Prefix of policyd's environment variables: MXGUARD_POLICYD_ + the key (MXGUARD_POLICYD_DATA_DIR). */
export const POLICYD_ENV_PREFIX = 'MXGUARD_POLICYD_';
/** The TCP listener when neither listen nor socket is set (postfix-mta-sts-resolver's port). */
export const DEFAULT_POLICYD_LISTEN: HostPort = { host: '127.0.0.1', port: 8461 };

export interface PolicydSettings {
  /** TCP socketmap listener; none when only a socket is set. */
  listen?: HostPort;
  /** UNIX socketmap listener (socket file). */
  socket?: string;
  /** Prometheus endpoint. */
  metricsListen?: HostPort;
  /** Where policyd.sqlite lives (absolute). */
  dataDir: string;
  /** Redis URL: the policy cache there instead of SQLite. */
  redis?: string;
  /** The common network options; timeoutSeconds limits each policy fetch; httpsPort for labs. */
  network: NetworkSettings & { httpsPort: number };
  /** The answer when every MX host has usable TLSA (src/sender/decide.ts DaneMode). */
  daneMode: 'dane-only' | 'dane';
  /** MTA-STS testing policies: ignored (RFC 8461 §5) or enforced (TestingMode). */
  testingMode: 'ignore' | 'enforce';
  idCheckIntervalSeconds: number;
  answerTimeoutSeconds: number;
  maxConnections: number;
  idleTimeoutSeconds: number;
  storeSyncSeconds: number;
  logLevel: LogLevel;
  /** The config file read (absolute), if any. */
  configFile?: string;
  /** Deprecation notices about the config file, one per old key. */
  warnings: string[];
}

const path = z.string().min(1, 'must not be empty');

const PolicydSchema = z
  .object({
    listen: hostPort,
    socket: path,
    metricsListen: hostPort,
    dataDir: path,
    redis: z.string().min(1, 'must not be empty'),
    ...NETWORK_KEYS,
    httpsPort: wholeNumber(1, 65535),
    daneMode: z.enum(['dane-only', 'dane'], 'expected dane or dane-only'),
    testingMode: z.enum(['ignore', 'enforce'], 'expected ignore or enforce'),
    idCheckInterval: wholeNumber(1, 86_400),
    answerTimeout: wholeNumber(1, 90),
    maxConnections: wholeNumber(1, 1_000_000),
    idleTimeout: wholeNumber(1, 86_400),
    storeSync: wholeNumber(1, 3600),
    logLevel: z.enum(LOG_LEVELS, `expected one of ${LOG_LEVELS.join(', ')}`),
  })
  .partial()
  .strict();

type Layer = z.infer<typeof PolicydSchema>;

/** The command-line option of each key; every key is also an MXGUARD_POLICYD_* variable. */
const OPTIONS = {
  listen: '--listen',
  socket: '--socket',
  metricsListen: '--metrics',
  dataDir: '--data-dir',
  redis: '--redis',
  ...NETWORK_OPTIONS,
  httpsPort: '--https-port',
  daneMode: '--dane-mode',
  testingMode: '--testing-mode',
  idCheckInterval: '--id-check-interval',
  answerTimeout: '--answer-timeout',
  maxConnections: '--max-connections',
  idleTimeout: '--idle-timeout',
  storeSync: '--store-sync',
  logLevel: '--log-level',
} as const satisfies Record<keyof Layer, string>;

/** Options as commander gives them, by key; only those the user gave. */
export type PolicydCliSettings = Partial<Record<keyof typeof OPTIONS, string | string[] | boolean>> & {
  config?: string;
};

/** The keys of earlier releases and their new names (read until the next release, with a warning). */
export const DEPRECATED_KEYS: Readonly<Record<string, keyof Layer>> = {
  'data-dir': 'dataDir',
  'ca-file': 'caFile',
  'allow-private': 'allowPrivate',
  'https-port': 'httpsPort',
  'dane-mode': 'daneMode',
  'testing-mode': 'testingMode',
  'id-check-interval': 'idCheckInterval',
  'answer-timeout': 'answerTimeout',
  'max-connections': 'maxConnections',
  'idle-timeout': 'idleTimeout',
  'store-sync': 'storeSync',
  metrics: 'metricsListen',
  // Same name, but text was read: "resolver": "127.0.0.1", "timeout": "30".
  resolver: 'resolver',
  timeout: 'timeout',
};

const NUMBER_KEYS = new Set([
  'httpsPort',
  'idCheckInterval',
  'answerTimeout',
  'maxConnections',
  'idleTimeout',
  'storeSync',
]);

const POLICYD_CONFIG: ConfigSpec<Layer> = {
  schema: PolicydSchema,
  envPrefix: POLICYD_ENV_PREFIX,
  envKeys: Object.keys(OPTIONS),
  options: OPTIONS,
  fromText,
  resolvePaths,
  deprecatedKeys: DEPRECATED_KEYS,
};

export interface PolicydLoadInput {
  cli: PolicydCliSettings;
  env: NodeJS.ProcessEnv;
  /** Relative paths on the command line and in the environment are relative to this. */
  cwd: string;
}

/** Read, validate and merge every source; throws ConfigError listing every problem. */
export function loadPolicydSettings(input: PolicydLoadInput): PolicydSettings {
  const { config, ...options } = input.cli;
  const loaded = loadConfig(POLICYD_CONFIG, {
    options,
    configFile: config,
    env: input.env,
    cwd: input.cwd,
  });
  const m = loaded.merged;
  return {
    listen: m.listen ?? (m.socket === undefined ? DEFAULT_POLICYD_LISTEN : undefined),
    socket: m.socket,
    metricsListen: m.metricsListen,
    dataDir: m.dataDir ?? resolve(input.cwd, DEFAULT_DATA_DIR),
    redis: m.redis,
    network: { ...networkSettings(m), httpsPort: m.httpsPort ?? 443 },
    daneMode: m.daneMode ?? 'dane-only',
    testingMode: m.testingMode ?? 'ignore',
    idCheckIntervalSeconds: m.idCheckInterval ?? 60,
    answerTimeoutSeconds: m.answerTimeout ?? 10,
    maxConnections: m.maxConnections ?? 2000,
    idleTimeoutSeconds: m.idleTimeout ?? 300,
    storeSyncSeconds: m.storeSync ?? 5,
    logLevel: m.logLevel ?? 'info',
    configFile: loaded.configFile,
    warnings: loaded.warnings,
  };
}

export { ConfigError };

/** Text from the environment or the command line, as the type the schema wants for `key`. */
function fromText(key: string, value: string): unknown {
  if (NUMBER_KEYS.has(key)) return numberText(value);
  return networkText(key, value) ?? value;
}

/** Paths in a layer are relative to its source: the config file's folder, or the working directory. */
function resolvePaths(layer: Layer, abs: (path: string) => string): Layer {
  const out: Layer = { ...layer };
  if (out.dataDir !== undefined) out.dataDir = abs(out.dataDir);
  if (out.socket !== undefined) out.socket = abs(out.socket);
  if (out.caFile !== undefined) out.caFile = out.caFile.map(abs);
  return out;
}
