// `mxguard policyd`: the Postfix TLS policy daemon (socketmap), DANE-aware MTA-STS enforcement for
// outgoing mail; and its admin commands `query`, `purge` and `list`, which work on the same data
// directory while the daemon runs (a purge reaches the daemon within --store-sync seconds).
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { type HostPort, parseHostPort } from '../common/host-port.js';
import { listPolicies, purgePolicies } from '../policyd/admin.js';
import { startPolicyd } from '../policyd/daemon.js';
import type { DaneMode, TestingMode } from '../policyd/decide.js';
import { type DomainSnapshot, PolicyEngine } from '../policyd/engine.js';
import { jsonLogger, silentLogger } from '../policyd/log.js';
import { MemoryPolicyStore } from '../policyd/memory.js';
import { normalizeKey } from '../policyd/socketmap.js';
import { SqlitePolicyStore, STORE_FILE } from '../policyd/sqlite.js';
import type { CachedPolicy, PolicyStore } from '../policyd/store.js';
import { policyFetcher } from '../policyd/sts.js';
import { DEFAULT_DATA_DIR } from '../store/index.js';
import { addNetworkOptions, type NetworkOptions, networkFromOptions } from './netopts.js';
import { CliError, intOption, printJson, readInputText } from './util.js';

export const DEFAULT_LISTEN = '127.0.0.1:8461';

interface CommonOptions {
  dataDir: string;
  redis?: string;
  config?: string;
}

interface DaemonOptions extends CommonOptions, NetworkOptions {
  listen?: string;
  socket?: string;
  metrics?: string;
  daneMode: string;
  testingMode: string;
  idCheckInterval: string;
  answerTimeout: string;
  maxConnections: string;
  idleTimeout: string;
  storeSync: string;
}

interface QueryOptions extends CommonOptions, NetworkOptions {
  json?: boolean;
  daneMode: string;
  testingMode: string;
}

interface ListOptions extends CommonOptions, NetworkOptions {
  json?: boolean;
  stale?: boolean;
}

interface PurgeOptions extends CommonOptions {
  all?: boolean;
  json?: boolean;
}

const MAIN_CF = `
Postfix main.cf (socketmap tables: Postfix >= 2.10):
  smtp_dns_support_level = dnssec          # needed for the dane / dane-only answers
  smtp_tls_security_level = dane           # default for domains without an answer
  smtp_tls_policy_maps = socketmap:inet:127.0.0.1:8461:postfix
  (or socketmap:unix:/path/to/policyd.sock:postfix with --socket)`;

export function register(program: Command): void {
  const policyd = program
    .command('policyd')
    .description('Postfix TLS policy daemon: DANE-aware MTA-STS enforcement for outgoing mail (socketmap)');
  addCommonOptions(policyd)
    .option(
      '--listen <host:port>',
      `TCP socketmap listener (default ${DEFAULT_LISTEN}; none with only --socket)`,
    )
    .option('--socket <path>', 'UNIX socketmap listener (socket file, made 0666)')
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics')
    .option('--dane-mode <mode>', 'answer when every MX host has usable TLSA: dane-only or dane', 'dane-only')
    .option('--testing-mode <mode>', 'MTA-STS testing policies: ignore (RFC 8461) or enforce', 'ignore')
    .option('--id-check-interval <seconds>', 'check a cached policy id in DNS at most this often', '60')
    .option(
      '--answer-timeout <seconds>',
      'longest wait for a first lookup; then NOTFOUND, lookups go on',
      '10',
    )
    .option('--max-connections <n>', 'open client connections at most (more are closed)', '2000')
    .option('--idle-timeout <seconds>', 'close client connections idle this long', '300')
    .option('--store-sync <seconds>', 'how often to take in purges and other writers of the cache', '5');
  addNetworkOptions(policyd).addHelpText(
    'after',
    `
Answers: "OK secure match=... servername=hostname" for an enforced MTA-STS policy, "OK dane-only" /
"OK dane" when DANE applies (DANE first, RFC 8461 §2), "NOTFOUND " otherwise. A failing policy fetch
never yields TEMP: the cached policy is kept, or NOTFOUND answered. --timeout limits each policy
fetch. --config FILE: JSON with the option names as keys ("data-dir", "listen", ...); options given
on the command line win. Decision table and details: docs/policyd.md.
${MAIN_CF}

Examples:
  $ mxguard policyd --data-dir /var/lib/mxguard --metrics 127.0.0.1:9461
  $ mxguard policyd --socket /var/spool/postfix/private/mxguard --resolver 127.0.0.1
  $ mxguard policyd query example.com
  $ mxguard policyd list --stale
  $ mxguard policyd purge example.com`,
  );
  policyd.action(async (_opts: DaemonOptions, command: Command) => runDaemon(command));

  const query = addCommonOptions(
    policyd
      .command('query')
      .description('what the daemon would answer for a domain, and why (looks up DNS, fetches if not cached)')
      .argument('<domain>', 'recipient domain (or a Postfix key such as [host]:port)')
      .option('--json', 'print the result as JSON')
      .option('--dane-mode <mode>', 'as for the daemon', 'dane-only')
      .option('--testing-mode <mode>', 'as for the daemon', 'ignore'),
  );
  addNetworkOptions(query).addHelpText(
    'after',
    `
The cache is only read: nothing is stored. Give the same --resolver, --dane-mode and --testing-mode
as the daemon.

Examples:
  $ mxguard policyd query example.com
  $ mxguard policyd query example.com --json --data-dir /var/lib/mxguard`,
  );
  query.action(async (domain: string, _opts: QueryOptions, command: Command) => runQuery(domain, command));

  const purge = addCommonOptions(
    policyd
      .command('purge')
      .description('remove a cached policy (or all), so that the next message fetches it afresh')
      .argument('[domain]', 'recipient domain')
      .option('--all', 'remove every cached policy')
      .option('--json', 'print the removed domains as JSON'),
  ).addHelpText(
    'after',
    `
A running daemon notices within --store-sync seconds (default 5) and looks the domain up again on its
next query. Remembered "no policy" answers are not stored and end by themselves within 5 minutes.

Examples:
  $ mxguard policyd purge example.com
  $ mxguard policyd purge --all --data-dir /var/lib/mxguard`,
  );
  purge.action(async (domain: string | undefined, _opts: PurgeOptions, command: Command) =>
    runPurge(domain, command),
  );

  const list = addCommonOptions(
    policyd
      .command('list')
      .description('list the cached policies; --stale: only expired ones or ones DNS no longer publishes')
      .option('--json', 'print the list as JSON')
      .option(
        '--stale',
        'look up each id in DNS and list only stale policies (expired, id changed, withdrawn)',
      ),
  );
  addNetworkOptions(list).addHelpText(
    'after',
    `
Examples:
  $ mxguard policyd list
  $ mxguard policyd list --stale --json`,
  );
  list.action(async (_opts: ListOptions, command: Command) => runList(command));
}

function addCommonOptions(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'directory of the policy cache (policyd.sqlite)', DEFAULT_DATA_DIR)
    .option('--redis <url>', 'keep the policy cache in Redis (redis://host:port/db), shared by several MTAs')
    .option('--config <file>', 'JSON file with option values (keys as the option names)');
}

// ---------------------------------------------------------------------------------------------------------
// Options: command line > the parent command's command line > config file > defaults

const CONFIG_SCHEMA = z
  .object({
    listen: z.string(),
    socket: z.string(),
    'data-dir': z.string(),
    redis: z.string(),
    metrics: z.string(),
    resolver: z.union([z.string(), z.array(z.string())]),
    'ca-file': z.union([z.string(), z.array(z.string())]),
    'allow-private': z.boolean(),
    timeout: z.union([z.number(), z.string()]),
    'https-port': z.union([z.number(), z.string()]),
    'dane-mode': z.enum(['dane', 'dane-only']),
    'testing-mode': z.enum(['enforce', 'ignore']),
    'id-check-interval': z.union([z.number(), z.string()]),
    'answer-timeout': z.union([z.number(), z.string()]),
    'max-connections': z.union([z.number(), z.string()]),
    'idle-timeout': z.union([z.number(), z.string()]),
    'store-sync': z.union([z.number(), z.string()]),
  })
  .partial()
  .strict();

/** Config keys holding paths: relative ones are taken from the config file's directory. */
const PATH_KEYS = new Set(['socket', 'data-dir', 'ca-file']);

function readConfig(path: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(readInputText(path, 1024 * 1024));
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(2, `--config ${path}: not valid JSON: ${(err as Error).message}`);
  }
  const parsed = CONFIG_SCHEMA.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`)
      .join('; ');
    throw new CliError(2, `--config ${path}: ${problems}`);
  }
  const base = dirname(resolve(path));
  const config: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parsed.data)) {
    const asPath = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
    let v: unknown = typeof value === 'number' ? String(value) : value;
    if (PATH_KEYS.has(key)) v = Array.isArray(v) ? v.map(asPath) : asPath(v as string);
    if ((key === 'resolver' || key === 'ca-file') && typeof v === 'string') v = [v];
    config[camelCase(key)] = v;
  }
  return config;
}

function camelCase(key: string): string {
  return key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function effectiveOptions<T>(command: Command): T {
  const options: Record<string, unknown> = { ...command.opts() };
  const fromCli = (c: Command, key: string) => c.getOptionValueSource(key) === 'cli';
  const parent = command.parent?.name() === 'policyd' ? command.parent : undefined;
  if (parent !== undefined) {
    // `mxguard policyd --data-dir X list`: options before the subcommand count too.
    for (const [key, value] of Object.entries(parent.opts())) {
      if (key in options && !fromCli(command, key) && fromCli(parent, key)) options[key] = value;
    }
  }
  const configFile = options.config as string | undefined;
  if (configFile !== undefined) {
    for (const [key, value] of Object.entries(readConfig(configFile))) {
      const given = fromCli(command, key) || (parent !== undefined && fromCli(parent, key));
      if (key in options && !given) options[key] = value;
      else if (!(key in options) && command.options.some((o) => o.attributeName() === key))
        options[key] = value;
    }
  }
  return options as T;
}

/** HOST:PORT or [IPv6]:PORT; port 0 picks a free port. */
export function hostPortOption(option: string, value: string): HostPort {
  const address = parseHostPort(value);
  if (!address) throw new CliError(2, `${option}: expected HOST:PORT or [IPv6]:PORT, got "${value}"`);
  return address;
}

function daneMode(value: string): DaneMode {
  if (value !== 'dane' && value !== 'dane-only') {
    throw new CliError(2, `--dane-mode: expected dane or dane-only, got "${value}"`);
  }
  return value;
}

function testingMode(value: string): TestingMode {
  if (value !== 'enforce' && value !== 'ignore') {
    throw new CliError(2, `--testing-mode: expected ignore or enforce, got "${value}"`);
  }
  return value;
}

function seconds(option: string, value: string, min: number, max: number): number {
  return intOption(option, value, min, max) * 1000;
}

// ---------------------------------------------------------------------------------------------------------
// The daemon

async function runDaemon(command: Command): Promise<void> {
  const opts = effectiveOptions<DaemonOptions>(command);
  const listen =
    opts.listen !== undefined
      ? hostPortOption('--listen', opts.listen)
      : opts.socket === undefined
        ? hostPortOption('--listen', DEFAULT_LISTEN)
        : undefined;
  const metrics = opts.metrics === undefined ? undefined : hostPortOption('--metrics', opts.metrics);
  const settings = {
    daneMode: daneMode(opts.daneMode),
    testingMode: testingMode(opts.testingMode),
    idCheckIntervalMs: seconds('--id-check-interval', opts.idCheckInterval, 1, 86_400),
    answerTimeoutMs: seconds('--answer-timeout', opts.answerTimeout, 1, 90),
    maxConnections: intOption('--max-connections', opts.maxConnections, 1, 1_000_000),
    idleTimeoutMs: seconds('--idle-timeout', opts.idleTimeout, 1, 86_400),
    syncIntervalMs: seconds('--store-sync', opts.storeSync, 1, 3600),
  };
  const network = await networkFromOptions(opts);
  const log = jsonLogger();
  const store = opts.redis === undefined ? undefined : await openRedis(opts.redis);
  let running: Awaited<ReturnType<typeof startPolicyd>>;
  try {
    running = await startPolicyd({
      store,
      listen,
      socket: opts.socket,
      metrics,
      dataDir: opts.dataDir,
      resolver: network.resolver,
      ca: network.ca,
      allowPrivate: network.allowPrivate,
      httpsPort: network.httpsPort,
      fetchTimeoutMs: network.timeoutMs,
      daneMode: settings.daneMode,
      testingMode: settings.testingMode,
      syncIntervalMs: settings.syncIntervalMs,
      engine: { idCheckIntervalMs: settings.idCheckIntervalMs, answerTimeoutMs: settings.answerTimeoutMs },
      server: { maxConnections: settings.maxConnections, idleTimeoutMs: settings.idleTimeoutMs },
      log,
    });
  } catch (err) {
    throw new CliError(2, `cannot start: ${describeStartError(err, opts)}`);
  }
  await new Promise<void>((done) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      log('info', 'stopping', { signal });
      running.stop().then(done, (err: Error) => {
        log('error', 'stop failed', { error: err.message });
        done();
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

function describeStartError(err: unknown, opts: DaemonOptions): string {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
    const where = e.port !== undefined ? `${e.address}:${e.port}` : (e.address ?? opts.socket ?? '');
    return `${where}: ${e.code === 'EADDRINUSE' ? 'address already in use' : e.code === 'EACCES' ? 'permission denied' : 'address not available'}`;
  }
  if (e.code === 'SQLITE_CANTOPEN') return `${opts.dataDir}: cannot open the policy cache`;
  return e.message ?? String(err);
}

// ---------------------------------------------------------------------------------------------------------
// Admin commands

/** Redis, loaded only when asked for (the client library is not needed otherwise). */
async function openRedis(url: string): Promise<PolicyStore> {
  const { RedisPolicyStore } = await import('../policyd/redis.js');
  try {
    return await RedisPolicyStore.open({ url });
  } catch (err) {
    throw new CliError(2, `--redis: ${(err as Error).message}`);
  }
}

/** Redis with --redis; else the data directory's SQLite file, or an empty store when there is none yet. */
async function openStore(opts: CommonOptions): Promise<PolicyStore> {
  if (opts.redis !== undefined) return openRedis(opts.redis);
  if (!existsSync(join(opts.dataDir, STORE_FILE))) return new MemoryPolicyStore();
  try {
    return SqlitePolicyStore.open(opts.dataDir, { mustExist: true });
  } catch (err) {
    throw new CliError(
      2,
      `${join(opts.dataDir, STORE_FILE)}: cannot read the policy cache: ${(err as Error).message}`,
    );
  }
}

async function runQuery(key: string, command: Command): Promise<void> {
  const opts = effectiveOptions<QueryOptions>(command);
  const normal = normalizeKey(key);
  if ('notFound' in normal) {
    if (opts.json) printJson({ key, answer: { kind: 'notfound', reply: 'NOTFOUND ', why: normal.notFound } });
    else process.stdout.write(`${key}: NOTFOUND (${normal.notFound})\n`);
    return;
  }
  const network = await networkFromOptions(opts);
  const store = await openStore(opts);
  const engine = new PolicyEngine({
    resolver: network.resolver,
    store,
    fetchPolicy: policyFetcher({
      resolver: network.resolver,
      port: network.httpsPort,
      ca: network.ca,
      allowPrivate: network.allowPrivate,
      timeoutMs: network.timeoutMs,
    }),
    daneMode: daneMode(opts.daneMode),
    testingMode: testingMode(opts.testingMode),
    readOnly: true,
    log: silentLogger,
  });
  try {
    const snapshot = await engine.explain(normal.domain);
    if (opts.json) printJson(queryJson(snapshot));
    else process.stdout.write(queryText(snapshot));
  } finally {
    await store.close();
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function policyJson(entry: CachedPolicy) {
  return {
    id: entry.id,
    mode: entry.policy.mode,
    maxAge: entry.policy.maxAge,
    mx: entry.policy.mx,
    fetchedAt: iso(entry.fetchedAt),
    expiresAt: iso(entry.expiresAt),
    checkedAt: iso(entry.checkedAt),
  };
}

function queryJson(s: DomainSnapshot) {
  const answer = s.answer ?? { kind: 'notfound', text: 'NOTFOUND ', why: 'no answer could be determined' };
  const dane = s.dane?.discovery;
  return {
    domain: s.domain,
    answer: { kind: answer.kind, reply: answer.text, why: answer.why },
    cache: cacheState(s),
    policy: s.policy ? policyJson(s.policy) : null,
    expiredPolicy: s.expired ? policyJson(s.expired) : null,
    noPolicy: s.noPolicy ?? null,
    dns: s.dnsId ?? null,
    fetchFailure: s.failure
      ? {
          id: s.failure.id,
          code: s.failure.code,
          message: s.failure.message,
          retryAt: iso(s.failure.retryAt),
        }
      : null,
    dane: dane ? { verdict: dane.verdict, mx: dane.mx, hosts: dane.hosts } : null,
  };
}

function cacheState(s: DomainSnapshot): string {
  if (s.policy === undefined) return 'no policy cached';
  return s.policySource === 'store' ? 'cached' : 'fetched now (not cached)';
}

function queryText(s: DomainSnapshot): string {
  const q = queryJson(s);
  const lines = [`${s.domain}: ${q.answer.reply}`, `  why:    ${q.answer.why}`, `  cache:  ${q.cache}`];
  if (q.policy) {
    lines.push(
      `  policy: id ${q.policy.id}, mode ${q.policy.mode}, max_age ${q.policy.maxAge}, mx ${q.policy.mx.join(', ') || '(none)'}`,
      `          fetched ${q.policy.fetchedAt}, expires ${q.policy.expiresAt}, id checked ${q.policy.checkedAt}`,
    );
  } else {
    lines.push(`  policy: none in force${q.noPolicy ? `: ${q.noPolicy}` : ''}`);
  }
  if (q.dns) {
    const dns = q.dns;
    const text =
      dns.kind === 'id'
        ? q.policy && dns.id !== q.policy.id
          ? `id ${dns.id}: changed, the daemon fetches the new policy in the background`
          : `id ${dns.id}`
        : dns.kind === 'none'
          ? `no MTA-STS record: ${dns.reason}`
          : `lookup failed: ${dns.reason}`;
    lines.push(`  DNS:    ${text}`);
  }
  if (q.fetchFailure) {
    const f = q.fetchFailure;
    lines.push(`  fetch:  failed for id ${f.id}: ${f.code}: ${f.message} (next attempt after ${f.retryAt})`);
  }
  if (q.dane) {
    lines.push(`  DANE:   ${q.dane.verdict.kind}: ${q.dane.verdict.reason}`, `          ${q.dane.mx.detail}`);
    for (const h of q.dane.hosts) lines.push(`          ${h.host}: ${h.status}, ${h.detail}`);
  }
  return `${lines.join('\n')}\n`;
}

async function runPurge(domain: string | undefined, command: Command): Promise<void> {
  const opts = effectiveOptions<PurgeOptions>(command);
  if ((domain === undefined) === (opts.all !== true)) {
    throw new CliError(2, 'give either a DOMAIN or --all');
  }
  let target: { domain: string } | 'all' = 'all';
  if (domain !== undefined) {
    const normal = normalizeKey(domain);
    if ('notFound' in normal) throw new CliError(2, `${domain}: ${normal.notFound}`);
    target = { domain: normal.domain };
  }
  const store = await openStore(opts);
  try {
    const purged = await purgePolicies(store, target);
    if (opts.json) printJson({ purged });
    else if (target !== 'all') {
      process.stdout.write(
        purged.length > 0 ? `${target.domain}: purged\n` : `${target.domain}: no cached policy\n`,
      );
    } else
      process.stdout.write(`purged ${purged.length} cached ${purged.length === 1 ? 'policy' : 'policies'}\n`);
  } finally {
    await store.close();
  }
}

async function runList(command: Command): Promise<void> {
  const opts = effectiveOptions<ListOptions>(command);
  const resolver = opts.stale ? (await networkFromOptions(opts)).resolver : undefined;
  const store = await openStore(opts);
  try {
    const listed = await listPolicies(store, { now: Date.now(), resolver });
    const shown = opts.stale ? listed.filter((l) => l.stale) : listed;
    if (opts.json) {
      printJson(
        shown.map((l) => ({
          domain: l.entry.domain,
          ...policyJson(l.entry),
          expired: l.expired,
          stale: l.stale,
          why: l.why ?? null,
          dns: l.dns ?? null,
        })),
      );
      return;
    }
    if (shown.length === 0) {
      process.stdout.write(opts.stale ? 'no stale policies\n' : 'no cached policies\n');
      return;
    }
    const rows = shown.map((l) => [
      l.entry.domain,
      l.entry.policy.mode,
      l.entry.id,
      iso(l.entry.expiresAt),
      l.why ?? (l.expired ? 'expired' : 'fresh'),
    ]);
    const header = ['DOMAIN', 'MODE', 'ID', 'EXPIRES', 'STATE'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) =>
      cells
        .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd();
    process.stdout.write(`${[header, ...rows].map(line).join('\n')}\n`);
  } finally {
    await store.close();
  }
}
