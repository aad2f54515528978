// `mxguard serve`: policy hosting, TLS-RPT intake (HTTPS, SMTP, IMAP), the API and dashboard, ACME.
//
// This file is the command: its options, the settings they make (defaults < config file < MXGUARD_*
// environment < options), the lines the user sees on stderr, and the exit status. What runs, the
// node:cluster workers and their restarts, and shutdown live in src/server/start.ts and
// src/server/cluster.ts. Exit status 2 when serve cannot start or keep going (a StartError).
import type { Command } from 'commander';
import { formatHostPort } from '../common/host-port.js';
import { dataDirHint, mxguardCommand } from '../common/invocation.js';
import {
  type CliSettings,
  ConfigError,
  LOG_LEVELS,
  loadServeSettings,
  type ServeSettings,
} from '../server/config.js';
import { type ServeLookups, type ServeStarted, StartError, startServe } from '../server/start.js';
import { DEFAULT_DATA_DIR, describeDatabase } from '../store/index.js';
import { addNetworkOptions, type NetworkOptions, networkFromSettings } from './netopts.js';
import { databaseOption } from './store-options.js';
import { CliError, collect, intOption } from './util.js';

const EXAMPLES = `
Examples:
  $ mxguard serve
      policy hosting, intake and dashboard on http://127.0.0.1:8080, data in ./data
  $ mxguard serve --listen 127.0.0.1:8080 --tls-listen 0.0.0.0:443 --data-dir /var/lib/mxguard
      HTTPS with the certificates in /var/lib/mxguard/certs/mta-sts.<domain>/ (chosen by SNI)
  $ mxguard serve --config /etc/mxguard/serve.json --smtp-listen 0.0.0.0:25
      settings from a file (see docs/serve.md), reports by mail on port 25
  $ MXGUARD_DATABASE_URL='postgres://mxguard:PASSWORD@db.example.net:5432/mxguard?sslmode=require' mxguard serve
      the store in PostgreSQL (several serve instances may share it; docs/serve.md)
  $ mxguard serve --alert-webhook https://hooks.example.com/mxguard --monitor-interval 1800
      every watched domain checked on start and every 30 minutes; alerts POSTed (docs/monitoring.md)
Settings come from defaults < config file (--config or MXGUARD_CONFIG) < MXGUARD_* environment < options.
Variables: MXGUARD_ + the config key in upper case (MXGUARD_DATA_DIR, MXGUARD_TLS_LISTEN, MXGUARD_ADMIN_PASSWORD,
MXGUARD_IMAP_PASSWORD, ...); the full list and every config key: docs/serve.md "Settings".
`;

interface ServeCommandOptions extends Partial<NetworkOptions> {
  dataDir?: string;
  database?: string;
  listen?: string;
  tlsListen?: string;
  smtpListen?: string;
  config?: string;
  workers?: string;
  logLevel?: string;
  trustProxy?: string;
  adminHost?: string[];
  metricsListen?: string;
  monitorInterval?: string;
  alertWebhook?: string[];
}

export function register(program: Command): void {
  const command = program
    .command('serve')
    .description('host MTA-STS policies, take in TLS-RPT reports, serve the dashboard and its API')
    .option('--data-dir <dir>', 'database, certificates and ACME state (default ./data)')
    .option('--listen <host:port>', 'plain HTTP listener (default 127.0.0.1:8080)')
    .option('--tls-listen <host:port>', 'HTTPS listener, certificates chosen by SNI (default: none)')
    .option('--smtp-listen <host:port>', 'SMTP receiver for reports by mail (default: none)')
    .option('--config <file>', 'JSON config file (docs/serve.md)')
    .option('--workers <n>', 'processes serving HTTP (default: 2, or 1 on a single core)')
    .option('--log-level <level>', `log level: ${LOG_LEVELS.join(', ')} (default info)`)
    .option(
      '--trust-proxy <list>',
      'client address from X-Forwarded-For: true, or proxy addresses/CIDRs',
      collect,
    )
    .option(
      '--admin-host <name>',
      'a host name the dashboard and API answer on, besides the listen hosts and localhost (repeatable)',
      collect,
    )
    .option('--metrics-listen <host:port>', 'GET /metrics without login here, loopback only (default: none)')
    .option('--monitor-interval <seconds>', 'seconds between two checks of a watched domain (default 3600)')
    .option(
      '--alert-webhook <url>',
      'POST alert changes as JSON to this URL (repeatable; secrets: monitor.webhooks in the config file)',
      collect,
    );
  addNetworkOptions(databaseOption(command)).addHelpText('after', EXAMPLES);
  // The lab-only port options of the common set: the ports the monitor's checks connect to (tests).
  for (const option of command.options) {
    if (option.long === '--smtp-port' || option.long === '--https-port') option.hideHelp();
  }
  command.action(async (options: ServeCommandOptions, cmd: Command) => {
    await serve(userSetOptions(options, cmd), {
      smtpPort: intOption('--smtp-port', options.smtpPort ?? '25', 1, 65535),
      httpsPort: intOption('--https-port', options.httpsPort ?? '443', 1, 65535),
    });
  });
}

/** Only the options the user gave (commander fills in defaults for the network options). */
function userSetOptions(options: ServeCommandOptions, cmd: Command): CliSettings {
  const given = <K extends keyof ServeCommandOptions>(key: K) =>
    cmd.getOptionValueSource(key) === 'default' ? undefined : options[key];
  const trustProxy = options.trustProxy as unknown as string[] | undefined;
  const adminHosts = options.adminHost;
  return {
    dataDir: given('dataDir'),
    database: given('database'),
    listen: given('listen'),
    tlsListen: given('tlsListen'),
    smtpListen: given('smtpListen'),
    config: given('config'),
    workers: given('workers'),
    logLevel: given('logLevel'),
    trustProxy: trustProxy?.join(','),
    adminHosts: adminHosts?.join(','),
    metricsListen: given('metricsListen'),
    monitorInterval: given('monitorInterval'),
    alertWebhooks: options.alertWebhook?.join(','),
    resolver: given('resolver'),
    caFile: given('caFile'),
    allowPrivate: given('allowPrivate'),
    timeout: given('timeout'),
  };
}

export async function serve(
  cli: CliSettings,
  ports: { smtpPort?: number; httpsPort?: number } = {},
): Promise<void> {
  let settings: ServeSettings;
  try {
    settings = loadServeSettings({ cli, env: process.env, cwd: process.cwd() });
  } catch (err) {
    if (err instanceof ConfigError)
      throw new CliError(2, `serve: ${err.problems.join('\nmxguard: serve: ')}`);
    throw err;
  }
  const say = (line: string) => process.stderr.write(`mxguard serve: ${line}\n`);
  try {
    await startServe(settings, {
      lookups: () => lookups(settings, ports),
      started: (started) => announce(settings, started, say),
      signalAgain: (signal) => say(`${signal} again, exiting now`),
    });
  } catch (err) {
    if (err instanceof StartError) throw new CliError(2, err.message);
    throw err;
  }
}

/** The resolver and network settings from the network options; a bad option stops serve (status 2). */
async function lookups(
  settings: ServeSettings,
  ports: { smtpPort?: number; httpsPort?: number },
): Promise<ServeLookups> {
  try {
    const network = await networkFromSettings(settings.network, ports);
    return {
      resolver: network.resolver,
      network: {
        ca: network.ca,
        allowPrivate: network.allowPrivate,
        timeoutMs: network.timeoutMs,
        smtpPort: network.smtpPort,
        httpsPort: network.httpsPort,
      },
    };
  } catch (err) {
    if (err instanceof CliError) throw new StartError(err.message);
    throw err;
  }
}

/** Tell the person starting serve where it is and how to log in (stderr; logs go to stdout). */
function announce(settings: ServeSettings, started: ServeStarted, say: (line: string) => void): void {
  const { urls, generatedPassword } = started;
  say(`listening on ${urls.http} (policy hosting, POST /tlsrpt, dashboard at /)`);
  if (urls.https) say(`listening on ${urls.https} (policy hosting, certificate chosen by SNI)`);
  if (settings.metricsListen)
    say(`metrics on http://${formatHostPort(settings.metricsListen)}/metrics (no login: keep it private)`);
  if (settings.smtp) {
    say(
      `SMTP report intake on ${formatHostPort(settings.smtp)}, ${
        settings.defaultCertificate
          ? 'STARTTLS with the default certificate'
          : 'no STARTTLS (set defaultCertificate to offer it)'
      }`,
    );
  }
  if (settings.imap)
    say(`polling IMAP ${settings.imap.user}@${settings.imap.host} every ${settings.imap.intervalSeconds} s`);
  if (settings.acme) say(`ACME certificates from ${settings.acme.directoryUrl}`);
  const database = settings.database === undefined ? '' : `, database ${describeDatabase(settings.database)}`;
  say(
    `data in ${settings.dataDir}${database}; ${settings.workers} HTTP process${settings.workers > 1 ? 'es' : ''}`,
  );
  if (generatedPassword !== undefined) {
    say(`admin password (generated now, shown only once): ${generatedPassword}`);
  } else if (settings.adminPassword !== undefined) {
    say('admin login: the password from the config file or MXGUARD_ADMIN_PASSWORD');
  } else {
    say('admin login: the password shown when this data directory was first served');
  }
  if (started.domainCount === 0)
    say(
      `no domains yet: ${mxguardCommand()} domain add example.com --mx mx.example.com${dataDirHint(settings.dataDir, DEFAULT_DATA_DIR)}`,
    );
}
