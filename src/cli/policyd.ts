// `mxguard policyd`: the Postfix TLS policy daemon (socketmap), DANE-aware MTA-STS enforcement for
// outgoing mail; and its admin commands `query`, `purge` and `list`, which work on the same data
// directory while the daemon runs (a purge reaches the daemon within --store-sync seconds); and
// `postfix-config`, which prints a Postfix smart host that enforces DANE and MTA-STS for Exchange.
import { existsSync } from 'node:fs';
import { hostname as machineName } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { formatHostPort } from '../common/host-port.js';
import { LOG_LEVELS } from '../config/log.js';
import { listPolicies, postfixConsequence, purgePolicies } from '../policyd/admin.js';
import {
  ConfigError,
  DEFAULT_POLICYD_LISTEN,
  loadPolicydSettings,
  type PolicydCliSettings,
  type PolicydSettings,
} from '../policyd/config.js';
import { startPolicyd } from '../policyd/daemon.js';
import { type DomainSnapshot, PolicyEngine } from '../policyd/engine.js';
import { policydLogger, silentLogger } from '../policyd/log.js';
import { MemoryPolicyStore } from '../policyd/memory.js';
import { PostfixConfigError, policydMainCf, postfixSmartHost } from '../policyd/postfix-config.js';
import { normalizeKey } from '../policyd/socketmap.js';
import { SqlitePolicyStore, STORE_FILE } from '../policyd/sqlite.js';
import type { CachedPolicy, PolicyStore } from '../policyd/store.js';
import { policyFetcher } from '../sender/sts.js';
import { addNetworkOptions, type Network, networkFromSettings } from './netopts.js';
import { CliError, collect, printJson } from './util.js';

const DEFAULT_LISTEN = formatHostPort(DEFAULT_POLICYD_LISTEN);

/** The options of the admin commands that are not settings. */
interface OutputOptions {
  json?: boolean;
  stale?: boolean;
  all?: boolean;
}

const MAIN_CF = `
Postfix main.cf (socketmap tables: Postfix >= 2.10; "#" starts a comment only at the start of a line):
${policydMainCf().trimEnd().replace(/^/gm, '  ')}
  (socketmap:unix:/path/to/policyd.sock:postfix with --socket; a whole smart host: policyd postfix-config)`;

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
    .option('--dane-mode <mode>', 'answer when every MX host has usable TLSA: dane-only (default) or dane')
    .option('--testing-mode <mode>', 'MTA-STS testing policies: ignore (default, RFC 8461) or enforce')
    .option(
      '--id-check-interval <seconds>',
      'check a cached policy id in DNS at most this often (default 60)',
    )
    .option(
      '--answer-timeout <seconds>',
      'longest wait for a first lookup; then NOTFOUND, lookups go on (default 10)',
    )
    .option('--max-connections <n>', 'open client connections at most, more are closed (default 2000)')
    .option('--idle-timeout <seconds>', 'close client connections idle this long (default 300)')
    .option(
      '--store-sync <seconds>',
      'how often to take in purges and other writers of the cache (default 5)',
    )
    .option('--log-level <level>', `log level: ${LOG_LEVELS.join(', ')} (default info)`);
  addNetworkOptions(policyd, { smtp: false }).addHelpText(
    'after',
    `
Answers: "OK secure match=... servername=hostname" for an enforced MTA-STS policy, "OK dane-only" /
"OK dane" when DANE applies (DANE first, RFC 8461 §2), "NOTFOUND " otherwise. A failing policy fetch
never yields TEMP: the cached policy is kept, or NOTFOUND answered. --timeout limits each policy
fetch. Decision table and details: docs/policyd.md.

${SETTINGS_HELP}
${MAIN_CF}

Examples:
  $ mxguard policyd --data-dir /var/lib/mxguard --metrics 127.0.0.1:9461
  $ mxguard policyd --socket /var/spool/postfix/private/mxguard --resolver 127.0.0.1
  $ mxguard policyd query example.com
  $ mxguard policyd list --stale
  $ mxguard policyd purge example.com`,
  );
  policyd.action(async (_opts: OutputOptions, command: Command) => runDaemon(command));

  const query = addCommonOptions(
    policyd
      .command('query')
      .description('what the daemon would answer for a domain, and why (looks up DNS, fetches if not cached)')
      .argument('<domain>', 'recipient domain (or a Postfix key such as [host]:port)')
      .option('--json', 'print the result as JSON')
      .option('--dane-mode <mode>', 'as for the daemon')
      .option('--testing-mode <mode>', 'as for the daemon'),
  );
  addNetworkOptions(query, { smtp: false }).addHelpText(
    'after',
    `
The cache is only read: nothing is stored. Give the same --resolver, --dane-mode and --testing-mode
as the daemon, or the same --config file and MXGUARD_POLICYD_* variables.

Examples:
  $ mxguard policyd query example.com
  $ mxguard policyd query example.com --json --data-dir /var/lib/mxguard`,
  );
  query.action(async (domain: string, _opts: OutputOptions, command: Command) => runQuery(domain, command));

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
  purge.action(async (domain: string | undefined, _opts: OutputOptions, command: Command) =>
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
  addNetworkOptions(list, { smtp: false }).addHelpText(
    'after',
    `
Examples:
  $ mxguard policyd list
  $ mxguard policyd list --stale --json`,
  );
  list.action(async (_opts: OutputOptions, command: Command) => runList(command));

  policyd
    .command('postfix-config')
    .description('print a Postfix smart host (DANE + policyd) and the Exchange Send Connector that uses it')
    .option(
      '--relay-for <cidr>',
      'an Exchange server address or network, IPv4 or IPv6 (repeatable; required)',
      collect,
    )
    .option('--policyd <host:port>', `where Postfix asks mxguard policyd (default ${DEFAULT_LISTEN})`)
    .option('--policyd-socket <path>', "mxguard policyd's UNIX socket (--socket) instead")
    .option('--hostname <name>', "the smart host's fully qualified name (default: this machine's name)")
    .option('--json', 'print mainCf, masterCf and sendConnector as JSON')
    .addHelpText(
      'after',
      `
Exchange 2019 can enforce neither MTA-STS nor DANE when sending. This prints the answer: main.cf settings
for a Postfix that relays for the given Exchange servers only (never an open relay), requires STARTTLS from
them, and sends with DANE (smtp_dns_support_level = dnssec, smtp_tls_security_level = dane) and MTA-STS
through mxguard policyd, logging each TLS session's result; master.cf lines when needed; and the Exchange
Management Shell command (New-SendConnector -SmartHosts ... -RequireTLS $true -TlsAuthLevel DomainValidation)
that routes all outgoing mail through it. Details: docs/policyd.md "Exchange 2019 outbound through Postfix".

Examples:
  $ mxguard policyd postfix-config --relay-for 10.0.0.5 --relay-for 2001:db8:5::/64 --hostname relay.example.com
  $ mxguard policyd postfix-config --relay-for 10.0.0.0/28 --policyd-socket /run/mxguard/policyd.sock --json`,
    )
    .action((opts: PostfixConfigOptions) => runPostfixConfig(opts));
}

interface PostfixConfigOptions {
  relayFor?: string[];
  policyd?: string;
  policydSocket?: string;
  hostname?: string;
  json?: boolean;
}

function runPostfixConfig(opts: PostfixConfigOptions): void {
  let config: ReturnType<typeof postfixSmartHost>;
  try {
    config = postfixSmartHost({
      relayFor: opts.relayFor ?? [],
      policyd: opts.policyd,
      policydSocket: opts.policydSocket,
      hostname: opts.hostname ?? machineName(),
    });
  } catch (err) {
    if (err instanceof PostfixConfigError) {
      const hint =
        opts.hostname === undefined && err.code === 'POSTFIX_CONFIG_HOSTNAME'
          ? " (this machine's name; give --hostname)"
          : '';
      throw new CliError(2, `policyd postfix-config: ${err.code}: ${err.message}${hint}`);
    }
    throw err;
  }
  if (opts.json) {
    printJson(config);
    return;
  }
  const part = (title: string, text: string) => `# ===== ${title} =====\n${text}`;
  process.stdout.write(
    [
      part('/etc/postfix/main.cf: set these (postconf -e, or edit), then "postfix reload"', config.mainCf),
      part(
        '/etc/postfix/master.cf',
        config.masterCf || '# no change: the default services (smtp inet ... smtpd on port 25) do\n',
      ),
      part('Exchange Management Shell (PowerShell), on an Exchange server', config.sendConnector),
    ].join('\n'),
  );
}

const SETTINGS_HELP = `Settings: defaults < config file (--config FILE or MXGUARD_POLICYD_CONFIG: JSON, camelCase keys:
{"listen": "127.0.0.1:8461", "dataDir": "/var/lib/mxguard", "resolver": ["127.0.0.1"]}) <
MXGUARD_POLICYD_* environment (MXGUARD_POLICYD_DATA_DIR, MXGUARD_POLICYD_LISTEN, ...) < options.
The kebab-case keys of earlier releases ("data-dir") are still read, with a warning, until the next
release. Keys and variables: docs/policyd.md "Settings".`;

function addCommonOptions(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'directory of the policy cache, policyd.sqlite (default ./data)')
    .option('--redis <url>', 'keep the policy cache in Redis (redis://host:port/db), shared by several MTAs')
    .option('--config <file>', 'JSON config file (or MXGUARD_POLICYD_CONFIG; docs/policyd.md)');
}

// ---------------------------------------------------------------------------------------------------------
// Settings: defaults < config file < MXGUARD_POLICYD_* environment < options (src/policyd/config.ts)

/**
 * The settings for a command: the options the user gave on it, or on `policyd` before it
 * (`mxguard policyd --data-dir X list`), over the environment and the config file.
 */
function settingsOf(command: Command): PolicydSettings {
  const parent = command.parent?.name() === 'policyd' ? command.parent : undefined;
  const given: Record<string, unknown> = {};
  for (const c of parent ? [parent, command] : [command]) {
    for (const [key, value] of Object.entries(c.opts())) {
      if (c.getOptionValueSource(key) === 'cli') given[key] = value;
    }
  }
  const { metrics, ...rest } = given;
  const cli = { ...rest, metricsListen: metrics } as PolicydCliSettings;
  try {
    return loadPolicydSettings({ cli, env: process.env, cwd: process.cwd() });
  } catch (err) {
    if (err instanceof ConfigError) {
      throw new CliError(2, `policyd: ${err.problems.join('\nmxguard: policyd: ')}`);
    }
    throw err;
  }
}

/** Deprecation notices on stderr (the admin commands; the daemon logs them). */
function warn(settings: PolicydSettings): void {
  for (const warning of settings.warnings) process.stderr.write(`mxguard: policyd: warning: ${warning}\n`);
}

/** The resolver, trust anchors and limits of the settings' network options. */
function networkOf(settings: PolicydSettings): Promise<Network> {
  return networkFromSettings(settings.network, { httpsPort: settings.network.httpsPort });
}

// ---------------------------------------------------------------------------------------------------------
// The daemon

async function runDaemon(command: Command): Promise<void> {
  const settings = settingsOf(command);
  const network = await networkOf(settings);
  const log = policydLogger(settings.logLevel);
  for (const warning of settings.warnings) log('warn', warning, { configFile: settings.configFile });
  const store = settings.redis === undefined ? undefined : await openRedis(settings.redis);
  let running: Awaited<ReturnType<typeof startPolicyd>>;
  try {
    running = await startPolicyd({
      store,
      listen: settings.listen,
      socket: settings.socket,
      metrics: settings.metricsListen,
      dataDir: settings.dataDir,
      resolver: network.resolver,
      ca: network.ca,
      allowPrivate: network.allowPrivate,
      httpsPort: network.httpsPort,
      fetchTimeoutMs: network.timeoutMs,
      daneMode: settings.daneMode,
      testingMode: settings.testingMode,
      syncIntervalMs: settings.storeSyncSeconds * 1000,
      engine: {
        idCheckIntervalMs: settings.idCheckIntervalSeconds * 1000,
        answerTimeoutMs: settings.answerTimeoutSeconds * 1000,
      },
      server: {
        maxConnections: settings.maxConnections,
        idleTimeoutMs: settings.idleTimeoutSeconds * 1000,
      },
      log,
    });
  } catch (err) {
    throw new CliError(2, `cannot start: ${describeStartError(err, settings)}`);
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

function describeStartError(err: unknown, settings: PolicydSettings): string {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
    const where = e.port !== undefined ? `${e.address}:${e.port}` : (e.address ?? settings.socket ?? '');
    return `${where}: ${e.code === 'EADDRINUSE' ? 'address already in use' : e.code === 'EACCES' ? 'permission denied' : 'address not available'}`;
  }
  if (e.code === 'SQLITE_CANTOPEN') return `${settings.dataDir}: cannot open the policy cache`;
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
async function openStore(settings: PolicydSettings): Promise<PolicyStore> {
  if (settings.redis !== undefined) return openRedis(settings.redis);
  if (!existsSync(join(settings.dataDir, STORE_FILE))) return new MemoryPolicyStore();
  try {
    return SqlitePolicyStore.open(settings.dataDir, { mustExist: true });
  } catch (err) {
    throw new CliError(
      2,
      `${join(settings.dataDir, STORE_FILE)}: cannot read the policy cache: ${(err as Error).message}`,
    );
  }
}

async function runQuery(key: string, command: Command): Promise<void> {
  const settings = settingsOf(command);
  warn(settings);
  const opts = command.opts<OutputOptions>();
  const normal = normalizeKey(key);
  if ('notFound' in normal) {
    if (opts.json) printJson({ key, answer: { kind: 'notfound', reply: 'NOTFOUND ', why: normal.notFound } });
    else process.stdout.write(`${key}: NOTFOUND (${normal.notFound})\n`);
    return;
  }
  const network = await networkOf(settings);
  const store = await openStore(settings);
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
    daneMode: settings.daneMode,
    testingMode: settings.testingMode,
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
    postfix: postfixConsequence(s) ?? null,
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
  if (q.postfix) {
    // What Postfix does with the answer: said first when it stops mail (defer or bounce).
    const verb = { dane: 'DANE', 'mta-sts': 'MTA-STS', tls: 'TLS', plain: 'plain text', refuse: 'REFUSES' };
    const head = q.postfix.stops
      ? 'WILL NOT DELIVER: with this answer Postfix defers or bounces mail to this domain'
      : 'delivers';
    lines.splice(1, 0, `  postfix: ${head}${q.postfix.none ? ` (${q.postfix.none})` : ''}`);
    q.postfix.hosts.forEach((h, i) => {
      lines.splice(2 + i, 0, `           ${h.host}: ${verb[h.delivery]}: ${h.why}`);
    });
  }
  return `${lines.join('\n')}\n`;
}

async function runPurge(domain: string | undefined, command: Command): Promise<void> {
  const settings = settingsOf(command);
  warn(settings);
  const opts = command.opts<OutputOptions>();
  if ((domain === undefined) === (opts.all !== true)) {
    throw new CliError(2, 'give either a DOMAIN or --all');
  }
  let target: { domain: string } | 'all' = 'all';
  if (domain !== undefined) {
    const normal = normalizeKey(domain);
    if ('notFound' in normal) throw new CliError(2, `${domain}: ${normal.notFound}`);
    target = { domain: normal.domain };
  }
  const store = await openStore(settings);
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
  const settings = settingsOf(command);
  warn(settings);
  const opts = command.opts<OutputOptions>();
  const resolver = opts.stale ? (await networkOf(settings)).resolver : undefined;
  const store = await openStore(settings);
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
