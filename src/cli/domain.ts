// `mxguard domain add|list|show|set|remove|check`: the domains `mxguard serve` hosts MTA-STS (RFC 8461)
// policies for, or only watches (--watch-only), kept in the same store as `serve` (and usable while it
// runs). Every policy change gets a new `_mta-sts` id (RFC 8461 §3.1), printed with the TXT value to
// publish. Before an enforce policy is stored, the live check runs (src/monitor/preflight.ts).
import type { Command } from 'commander';
import { type DomainReport, SECTIONS } from '../check/types.js';
import { mxguardCommand } from '../common/invocation.js';
import { quoteTxt } from '../common/txt.js';
import { Monitor } from '../monitor/monitor.js';
import { type PreflightProblem, preflightProblems, recentTlsRpt } from '../monitor/preflight.js';
import { DEFAULT_MONITOR_SETTINGS } from '../monitor/settings.js';
import { maxAgeWarnings } from '../mtasts/policy.js';
import { policyUrl } from '../mtasts/url.js';
import type { RecordSet } from '../records/build.js';
import { formatRecords } from '../records/format.js';
import { ConfigError, DEFAULT_ID_TTL, loadServeSettings } from '../server/config.js';
import type { IdPublisher } from '../server/context.js';
import {
  outcomeSentence,
  type PublishIdOutcome,
  publisherFor,
  publishPolicyId,
} from '../server/publish-id.js';
import { domainSetupItems, type SetupItem } from '../server/setup.js';
import { type Domain, type PolicyVersion, type Store, StoreError } from '../store/types.js';
import { humanReport } from './check.js';
import { addNetworkOptions, type NetworkOptions, networkFromOptions } from './netopts.js';
import { cliRecordSet, modeOption } from './records.js';
import { type StoreOptions, storeArgument, storeOptions, withStore } from './store-options.js';
import { publisherOf } from './tlsa-rollover.js';
import { CliError, collect, formatTable, intOption, printJson } from './util.js';

const FORMATS = ['bind', 'powershell', 'json'] as const;
type Format = (typeof FORMATS)[number];
/** TTL of the records `domain add|show` print. */
const RECORD_TTL = 3600;

const POLICY_HOST_HELP =
  'where mta-sts.DOMAIN points, for its A/AAAA or CNAME record: addresses or one host name';
const EXIT_STATUS = `
Exit status: 0 done (also "unchanged"), 1 refused because of what is stored (the domain already
exists) or by the pre-flight of an enforce policy, or publishing the new id by DNS UPDATE failed (the
change is stored), 2 usage error: a bad option value, an unknown domain, or the data directory cannot be used
(it holds no database: only \`domain add\` creates one).`;

export function register(program: Command): void {
  const domain = program
    .command('domain')
    .description('manage the domains `mxguard serve` hosts MTA-STS policies for or watches')
    .addHelpText(
      'after',
      `
Examples:
  $ mxguard domain add example.com --mx mail.example.com --mode testing
  $ mxguard domain set example.com --mode enforce
  $ mxguard domain show example.com --format powershell
${EXIT_STATUS}`,
    );
  registerAdd(domain);
  registerList(domain);
  registerShow(domain);
  registerSet(domain);
  registerRemove(domain);
  registerCheck(domain);
}

// ---- add ----

interface SettingsOptions extends StoreOptions, NetworkOptions {
  policyHostTarget?: string[];
  mx?: string[];
  mode?: string;
  maxAge?: string;
  rua?: string[];
  json?: boolean;
  force?: boolean;
  watchOnly?: boolean;
  dnsServer?: string;
  tsigKey?: string;
  zone?: string;
  config?: string;
}

const PREFLIGHT_HELP = `
Before an enforce policy is stored (add --mode enforce, set --mode enforce, or a new --mx of an
enforced domain), the live check of the domain runs with the network options: when an MX host in DNS
is not matched by the policy's mx, or fails STARTTLS or PKIX validation for its name, enforcing
senders would bounce mail, so nothing is stored and the exit status is 1, naming each problem and its
fix. --force stores the policy anyway and says what will bounce.`;

const ID_PUBLISH_HELP = `
With --dns-server and --tsig-key, or --config naming serve's config file with a dnsUpdate publisher
for the domain (docs/dns-update.md), a new policy id is published as the _mta-sts TXT record by DNS
UPDATE (RFC 2136, signed with TSIG) once the change is stored, then looked up through the resolver
(--resolver) until it shows. A failed publish keeps the change: exit status 1 (2 when the server
cannot be reached), naming the error and the record to publish by hand.`;

/** The options that publish the new `_mta-sts` id (add, set). */
function addIdPublishingOptions(command: Command): Command {
  return command
    .option(
      '--dns-server <ip[:port]>',
      'publish a new policy id by DNS UPDATE (RFC 2136) to this primary server',
    )
    .option('--tsig-key <file>', 'TSIG key for --dns-server: BIND/Knot key file or hmac-sha256:NAME:BASE64')
    .option('--zone <zone>', 'with --dns-server: the zone of _mta-sts.DOMAIN (default: found by SOA)')
    .option('--config <file>', "take the publisher from serve's config file (dnsUpdate), as serve does");
}

function registerAdd(domain: Command): void {
  const command = storeOptions(
    domain
      .command('add')
      .description('add a domain and its first MTA-STS policy; prints the DNS records to publish')
      .argument('<domain>', 'the mail domain (the part after @)')
      .option(
        '--mx <host...>',
        'MX host or pattern the policy allows (repeatable; *.example.com = one label)',
        collect,
      )
      .option('--mode <mode>', 'policy mode: testing, enforce or none', 'testing')
      .option('--max-age <seconds>', 'policy max_age in seconds', '604800')
      .option(
        '--rua <uri...>',
        'TLS-RPT report address(es), mailto: or https: (default mailto:tlsrpt@DOMAIN)',
        collect,
      )
      .option('--json', 'print the domain and its records as JSON')
      .option(
        '--watch-only',
        'only watch the domain: its policy is hosted elsewhere (GitHub Pages, a Worker, IIS); no --mx needed',
      )
      .option('--force', 'store an enforce policy although the live check finds MX hosts that would bounce'),
  ).option('--policy-host-target <target...>', POLICY_HOST_HELP, collect);
  addNetworkOptions(addIdPublishingOptions(command)).addHelpText(
    'after',
    `${PREFLIGHT_HELP}
${ID_PUBLISH_HELP}

Examples:
  $ mxguard domain add example.com --mx mail.example.com
  $ mxguard domain add example.com --mx '*.mail.example.net' --mode enforce --rua https://mta-sts.example.com/tlsrpt
  $ mxguard domain add example.org --watch-only
${EXIT_STATUS}`,
  );
  command.action(async (name: string, opts: SettingsOptions) => {
    if (opts.watchOnly) return addWatchOnly(name, opts);
    const mode = modeOption(opts.mode ?? 'testing');
    const maxAge = intOption('--max-age', opts.maxAge ?? '604800');
    const mx = opts.mx ?? [];
    // The same checks and defaults as `mxguard records`, before anything is stored.
    const preview = cliRecordSet(
      {
        domain: name,
        mode,
        maxAge,
        ttl: RECORD_TTL,
        mx,
        rua: opts.rua,
        policyHostTargets: opts.policyHostTarget,
      },
      new Date(),
    );
    const rua = opts.rua ?? [`mailto:tlsrpt@${preview.domain}`];
    const publisher = await idPublisherOf(preview.domain, opts);
    await withStore(
      opts,
      async (store) => {
        if (mode === 'enforce' && mx.length > 0) {
          if (await store.getDomain(preview.domain)) {
            throw new CliError(
              1,
              `${preview.domain}: the domain exists already (see \`${mxguardCommand()} domain show\`)`,
            );
          }
          await preflight(store, preview.domain, mx, opts);
        }
        const added = await store.addDomain(name, { mode, mx, maxAge, rua }, new Date());
        const set = recordSetFor(added, opts.policyHostTarget);
        const dnsUpdate = publisher && (await publishId(store, added, publisher, opts));
        if (opts.json) {
          printJson({ domain: added, records: set, ...(dnsUpdate && { dnsUpdate }) });
          return;
        }
        const out = [
          `added ${added.name}: policy id ${added.policyId}, mode ${added.mode}`,
          '',
          ...(dnsUpdate && dnsUpdate.status !== 'failed'
            ? [outcomeSentence(dnsUpdate)]
            : stsRecordLines(added)),
          '',
          ...formatRecords(set, 'bind').trimEnd().split('\n'),
        ];
        process.stdout.write(`${out.join('\n')}\n`);
        printNotes(added, set);
      },
      { create: true },
    );
  });
}

// ---- list ----

function registerList(domain: Command): void {
  storeOptions(
    domain
      .command('list')
      .description('list the configured domains with their last check and open alerts')
      .option('--json', 'print the domains as JSON'),
  )
    .addHelpText('after', `\nExample:\n  $ mxguard domain list --data-dir /var/lib/mxguard\n${EXIT_STATUS}`)
    .action(async (opts: StoreOptions & { json?: boolean }) => {
      await withStore(opts, async (store) => {
        const domains = await store.listDomains();
        const open = await store.openAlerts();
        const watched = await Promise.all(
          domains.map(async (d) => ({
            domain: d,
            lastCheck: (await store.listCheckRuns(d.name, { limit: 1 })).items[0],
            openAlerts: open.filter((a) => a.domain === d.name).length,
          })),
        );
        if (opts.json) {
          printJson({
            domains: watched.map(({ domain: d, lastCheck, openAlerts }) => ({
              ...d,
              lastCheck: lastCheck ? { id: lastCheck.id, at: lastCheck.at, status: lastCheck.status } : null,
              openAlerts,
            })),
          });
          return;
        }
        if (domains.length === 0) {
          process.stdout.write(`no domains configured (add one with \`${mxguardCommand()} domain add\`)\n`);
          return;
        }
        const rows = watched.map(({ domain: d, lastCheck, openAlerts }) => [
          d.name,
          d.watchOnly ? 'watch-only' : d.mode,
          d.watchOnly ? '-' : d.policyId,
          d.mx.join(',') || '-',
          d.watchOnly ? '-' : String(d.maxAge),
          lastCheck ? `${lastCheck.status} ${lastCheck.at.slice(0, 16)}Z` : 'never',
          String(openAlerts),
        ]);
        process.stdout.write(
          formatTable([
            ['DOMAIN', 'MODE', 'POLICY ID', 'MX', 'MAX_AGE', 'LAST CHECK', 'OPEN ALERTS'],
            ...rows,
          ]),
        );
      });
    });
}

// ---- show ----

function registerShow(domain: Command): void {
  const command = storeOptions(
    domain
      .command('show')
      .description('show a domain: settings, policy, its history and the DNS records to publish')
      .argument('<domain>', 'a configured domain')
      .option(
        '--format <format>',
        `records as ${FORMATS.join(', ')} (json prints everything as JSON)`,
        'bind',
      )
      .option('--json', 'same as --format json')
      .option(
        '--setup',
        'also look up in DNS what still stands between the domain and a working setup, each with its fix',
      ),
  ).option('--policy-host-target <target...>', POLICY_HOST_HELP, collect);
  addNetworkOptions(command).addHelpText(
    'after',
    `
--setup looks up mta-sts.DOMAIN, the published _mta-sts id and _smtp._tls with the network options (the
dashboard's front page shows the same, with what only serve knows: its listeners and intakes).

Examples:
  $ mxguard domain show example.com
  $ mxguard domain show example.com --format powershell
  $ mxguard domain show example.com --setup --resolver 9.9.9.9
${EXIT_STATUS}`,
  );
  command.action(
    async (
      name: string,
      opts: StoreOptions &
        NetworkOptions & { format: string; json?: boolean; policyHostTarget?: string[]; setup?: boolean },
    ) => {
      const format = (opts.json ? 'json' : opts.format) as Format;
      if (!FORMATS.includes(format)) {
        throw new CliError(2, `--format: unknown format "${opts.format}" (one of ${FORMATS.join(', ')})`);
      }
      await withStore(opts, async (store) => {
        const found = await store.getDomain(name);
        if (!found) throw unknownDomain(name);
        const history = await store.policyHistory(found.name);
        const set = recordSetFor(found, opts.policyHostTarget);
        const setup = opts.setup ? await setupOf(store, found, opts) : undefined;
        if (format === 'json') {
          printJson({ domain: found, history, records: set, ...(setup ? { setup } : {}) });
          return;
        }
        process.stdout.write(`${describeDomain(found, history).join('\n')}\n\n${formatRecords(set, format)}`);
        if (setup) process.stdout.write(`\n${setupLines(setup).join('\n')}\n`);
        printNotes(found, set);
      });
    },
  );
}

/** The setup items of one hosted domain from live lookups (src/server/setup.ts, as the dashboard shows them). */
async function setupOf(store: Store, d: Domain, opts: NetworkOptions): Promise<SetupItem[]> {
  if (d.watchOnly) return [];
  const network = await networkFromOptions(opts);
  return domainSetupItems({ store, resolver: network.resolver, now: () => new Date() }, d, undefined);
}

function setupLines(items: SetupItem[]): string[] {
  if (items.length === 0) return ['setup: nothing left to do that DNS shows'];
  return [
    'setup: still to do:',
    ...items.flatMap((i) => [`  ✗ ${i.message} [${i.code}]`, `    fix: ${i.fix}`]),
  ];
}

function describeDomain(d: Domain, history: PolicyVersion[]): string[] {
  return [
    `domain:     ${d.name}`,
    `mode:       ${d.mode}`,
    `mx:         ${d.mx.join(', ') || '(none)'}`,
    `max_age:    ${d.maxAge}`,
    `rua:        ${d.rua.join(', ')}`,
    `policy id:  ${d.policyId}`,
    `created:    ${d.createdAt}`,
    `updated:    ${d.updatedAt}`,
    '',
    `policy (${policyUrl(d.name) ?? d.name}):`,
    ...indent(d.policyText),
    '',
    'history (newest first):',
    ...history.map((v) => `  ${v.policyId}  ${v.createdAt}  ${policySummary(v.policyText)}`),
  ];
}

/** "mode enforce, max_age 604800, mx a, b" from a policy text. */
function policySummary(text: string): string {
  const fields = text
    .trimEnd()
    .split('\n')
    .slice(1)
    .map((line) => line.split(': '));
  const mx = fields.filter(([k]) => k === 'mx').map(([, v]) => v);
  const rest = fields.filter(([k]) => k !== 'mx').map(([k, v]) => `${k} ${v}`);
  return [...rest, `mx ${mx.join(', ') || '(none)'}`].join(', ');
}

// ---- set ----

function registerSet(domain: Command): void {
  const command = storeOptions(
    domain
      .command('set')
      .description('change a domain; a changed policy gets a new id, printed with the TXT record to publish')
      .argument('<domain>', 'a configured domain')
      .option('--mx <host...>', 'replace the MX hosts/patterns (repeatable)', collect)
      .option('--mode <mode>', 'policy mode: testing, enforce or none')
      .option('--max-age <seconds>', 'policy max_age in seconds')
      .option('--rua <uri...>', 'replace the TLS-RPT report addresses (repeatable)', collect)
      .option('--json', 'print the result as JSON')
      .option('--force', 'store an enforce policy although the live check finds MX hosts that would bounce'),
  );
  addNetworkOptions(addIdPublishingOptions(command)).addHelpText(
    'after',
    `
--mx and --rua replace the whole list. Setting what is already there changes nothing and keeps the id.
${PREFLIGHT_HELP} Switching testing to enforce also shows the TLS-RPT failures of the last 14 days.
${ID_PUBLISH_HELP}

Examples:
  $ mxguard domain set example.com --mode enforce
  $ mxguard domain set example.com --mx mx1.example.com --mx mx2.example.com --max-age 1209600
  $ mxguard domain set example.com --mode enforce --dns-server 192.0.2.53 --tsig-key /etc/mxguard/mxguard.key
${EXIT_STATUS}`,
  );
  command.action(async (name: string, opts: SettingsOptions) => {
    const patch: Partial<Domain> = {};
    if (opts.mode !== undefined) {
      patch.mode = modeOption(opts.mode);
    }
    if (opts.maxAge !== undefined) patch.maxAge = intOption('--max-age', opts.maxAge, 0, 31557600);
    if (opts.mx !== undefined) patch.mx = opts.mx;
    if (opts.rua !== undefined) patch.rua = opts.rua;
    if (Object.keys(patch).length === 0)
      throw new CliError(2, 'give at least one of --mx, --mode, --max-age, --rua');
    await withStore(opts, async (store) => {
      const before = await store.getDomain(name);
      if (!before) throw unknownDomain(name);
      const publisher = before.watchOnly ? undefined : await idPublisherOf(before.name, opts);
      const mode = patch.mode ?? before.mode;
      const mx = patch.mx ?? before.mx;
      const mxChanged = mx.join(' ') !== before.mx.join(' ');
      if (
        mode === 'enforce' &&
        (before.mode !== 'enforce' || mxChanged) &&
        mx.length > 0 &&
        !before.watchOnly
      ) {
        if (before.mode === 'testing') {
          process.stderr.write(
            `${before.name}: ${(await recentTlsRpt(store, before.name, new Date())).text}\n`,
          );
        }
        await preflight(store, before.name, mx, opts);
      }
      const after = await store.updateDomain(before.name, patch, new Date()).catch((err: unknown) => {
        // Name the domain the refused value was for.
        if (err instanceof StoreError && err.code === 'STORE_INVALID')
          throw new CliError(2, `${name}: ${err.message}`);
        throw err;
      });
      const policyChanged = after.policyId !== before.policyId;
      const ruaChanged = after.rua.join(',') !== before.rua.join(',');
      const set = recordSetFor(after);
      const dnsUpdate = policyChanged && publisher && (await publishId(store, after, publisher, opts));
      if (opts.json) {
        printJson({
          domain: after,
          policyChanged,
          ruaChanged,
          records: set,
          ...(dnsUpdate && { dnsUpdate }),
        });
        return;
      }
      if (!policyChanged && !ruaChanged) {
        process.stdout.write(`${after.name}: unchanged (policy id ${after.policyId})\n`);
        return;
      }
      const out: string[] = [];
      if (policyChanged) {
        out.push(`${after.name}: policy changed, new id ${after.policyId} (was ${before.policyId})`, '');
        out.push(
          ...indent(after.policyText),
          '',
          ...(dnsUpdate && dnsUpdate.status !== 'failed'
            ? [outcomeSentence(dnsUpdate)]
            : stsRecordLines(after)),
        );
      }
      if (ruaChanged) {
        const tlsrpt = set.records.find((r) => r.name === `_smtp._tls.${after.name}`)!;
        out.push(
          ...(policyChanged ? [''] : []),
          `${after.name}: TLS-RPT addresses changed; publish:`,
          `  ${tlsrpt.name}.\tTXT\t${quoteTxt(tlsrpt.value)}`,
        );
      }
      process.stdout.write(`${out.join('\n')}\n`);
      printNotes(after);
    });
  });
}

// ---- remove ----

function registerRemove(domain: Command): void {
  storeOptions(
    domain
      .command('remove')
      .description('stop hosting the policy of a domain (its reports stay)')
      .argument('<domain>', 'a configured domain')
      .option('--json', 'print the result as JSON'),
  )
    .addHelpText(
      'after',
      `
To withdraw MTA-STS safely (RFC 8461 §8.3), first "domain set DOMAIN --mode none", publish the new
id and wait for the old max_age to pass; only then remove the domain and its DNS records.

Example:
  $ mxguard domain remove example.com
${EXIT_STATUS}`,
    )
    .action(async (name: string, opts: StoreOptions & { json?: boolean }) => {
      await withStore(opts, async (store) => {
        const found = await store.getDomain(name);
        if (!found || !(await store.removeDomain(found.name))) throw unknownDomain(name);
        if (opts.json) {
          printJson({ removed: found.name });
          return;
        }
        process.stdout.write(
          `removed ${found.name}; remove _mta-sts.${found.name} and mta-sts.${found.name} from DNS too\n`,
        );
        if (found.mode !== 'none') {
          process.stderr.write(
            `note: ${found.name} was in mode ${found.mode}: senders keep its policy cached for up to max_age ${found.maxAge}s (RFC 8461 §8.3)\n`,
          );
        }
      });
    });
}

// ---- publishing the _mta-sts id ----

/** The publisher of `domain`'s id: --dns-server/--tsig-key, or serve's config file (--config); none without. */
async function idPublisherOf(domain: string, opts: SettingsOptions): Promise<IdPublisher | undefined> {
  if (opts.config === undefined) {
    const publisher = await publisherOf({ ...opts, timeout: opts.timeout ?? '30' });
    return publisher && { ...publisher, ttl: DEFAULT_ID_TTL };
  }
  if (opts.dnsServer !== undefined || opts.tsigKey !== undefined || opts.zone !== undefined) {
    throw new CliError(
      2,
      '--config: not with --dns-server, --tsig-key or --zone (the config file names them)',
    );
  }
  try {
    const settings = loadServeSettings({ cli: { config: opts.config }, env: {}, cwd: process.cwd() });
    return publisherFor(settings.dnsUpdate, domain);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(2, err.message);
    throw err;
  }
}

/**
 * Publish the stored domain's id (src/server/publish-id.ts, as serve does) and look it up through the
 * resolver. A failure keeps the stored change and sets the exit status: 2 unreachable, else 1.
 */
async function publishId(
  store: Store,
  d: Domain,
  publisher: IdPublisher,
  opts: SettingsOptions,
): Promise<PublishIdOutcome> {
  const network = await networkFromOptions(opts);
  const outcome = await publishPolicyId(
    {
      store,
      resolver: network.resolver,
      dataDir: opts.dataDir,
      now: () => new Date(),
      timeoutMs: network.timeoutMs,
    },
    publisher,
    d,
  );
  if (outcome.status === 'failed') {
    const couldNotRun = outcome.code === 'UPDATE_UNREACHABLE' || outcome.code === 'UPDATE_TIMEOUT';
    process.exitCode = couldNotRun ? 2 : 1;
    process.stderr.write(`${d.name}: ${outcomeSentence(outcome)}\n`);
  }
  return outcome;
}

// ---- watch-only, the live check, the pre-flight of enforce ----

/** `domain add DOMAIN --watch-only`: watched by serve's monitor; its policy is hosted elsewhere. */
async function addWatchOnly(name: string, opts: SettingsOptions): Promise<void> {
  for (const [given, option] of [
    [opts.mx, '--mx'],
    [opts.policyHostTarget, '--policy-host-target'],
    [opts.force, '--force'],
    [opts.dnsServer ?? opts.tsigKey ?? opts.config, '--dns-server, --tsig-key, --config'],
  ] as const) {
    if (given !== undefined)
      throw new CliError(2, `${option}: not with --watch-only (no policy is hosted here)`);
  }
  if (opts.mode !== undefined && opts.mode !== 'testing') {
    throw new CliError(2, '--mode: not with --watch-only (the policy is hosted elsewhere)');
  }
  const domain = cliRecordSet(
    { domain: name, mode: 'none', maxAge: 86400, ttl: RECORD_TTL, mx: [] },
    new Date(),
  ).domain;
  const rua = opts.rua ?? [`mailto:tlsrpt@${domain}`];
  await withStore(
    opts,
    async (store) => {
      // Mode none with no mx: what is stored is never served (policy hosting answers 404 for it).
      const added = await store.addDomain(
        domain,
        { mode: 'none', mx: [], maxAge: 86400, rua, watchOnly: true },
        new Date(),
      );
      if (opts.json) {
        printJson({ domain: added });
        return;
      }
      process.stdout.write(
        `added ${added.name} (watch-only): \`${mxguardCommand()} serve\` checks it on its schedule; its policy stays where it is hosted now, serve hosts nothing for it\n` +
          `check it now: ${mxguardCommand()} domain check ${added.name}${storeArgument(opts)}\n`,
      );
    },
    { create: true },
  );
}

/** The monitor of serve (src/monitor/monitor.ts) on this store, with the common network options. */
async function cliMonitor(store: Store, opts: NetworkOptions): Promise<Monitor> {
  const network = await networkFromOptions(opts);
  return new Monitor({ store, settings: DEFAULT_MONITOR_SETTINGS, network, now: () => new Date() });
}

/**
 * The pre-flight of an enforce policy (src/monitor/preflight.ts): the live check of `domain`, then
 * exit 1 naming each problem and its fix, or with --force a warning saying what will bounce.
 */
async function preflight(
  store: Store,
  domain: string,
  mx: readonly string[],
  opts: SettingsOptions,
): Promise<void> {
  if (process.stderr.isTTY) process.stderr.write(`checking ${domain} before enforcing…\n`);
  // The same live check as serve's pre-flight (ctx.monitor.liveCheck): nothing is stored.
  const result = await (await cliMonitor(store, opts)).liveCheck(domain);
  const problems = preflightProblems(domain, result, { mx });
  if (problems.length === 0) return;
  if (!opts.force) {
    throw new CliError(
      1,
      [
        `${domain}: not enforcing: enforcing senders would bounce mail:`,
        ...problemLines(problems),
        'fix each problem and run this again, or add --force to enforce anyway',
      ].join('\n'),
    );
  }
  process.stderr.write(
    [
      `${domain}: warning: --force: enforcing although senders that enforce MTA-STS will bounce mail:`,
      ...problemLines(problems),
      '',
    ].join('\n'),
  );
}

function problemLines(problems: PreflightProblem[]): string[] {
  return problems.flatMap((p) => [`  ✗ ${p.message} [${p.code}]`, `    fix: ${p.fix}`]);
}

// ---- check ----

interface CheckCommandOptions extends StoreOptions, NetworkOptions {
  json?: boolean;
}

function registerCheck(domain: Command): void {
  const command = storeOptions(
    domain
      .command('check')
      .description(
        'check a configured or watched domain now, store the run in its history like serve does, print the findings',
      )
      .argument('<domain>', 'a configured or watched domain')
      .option('--json', 'print the stored check run as JSON'),
  );
  addNetworkOptions(command).addHelpText(
    'after',
    `
The run opens and resolves alerts as serve's scheduled checks do (notifications go out from serve).
Exit status: 0 nothing failed, 1 a check failed, 2 the check could not run or a usage error.

Example:
  $ mxguard domain check example.com --data-dir /var/lib/mxguard`,
  );
  command.action(async (name: string, opts: CheckCommandOptions) => {
    await withStore(opts, async (store) => {
      const found = await store.getDomain(name);
      if (!found) throw unknownDomain(name);
      const monitor = await cliMonitor(store, opts);
      if (process.stderr.isTTY) process.stderr.write(`checking ${found.name}…\n`);
      const run = await monitor.check(found.name, 'manual');
      const open = await store.openAlerts(found.name);
      if (opts.json) printJson({ run, openAlerts: open });
      else {
        // The audit's sections as `mxguard check` prints them; the monitor's own findings after them.
        const audit = run.findings.filter((f) => (SECTIONS as readonly string[]).includes(f.section));
        const own = run.findings.filter((f) => !(SECTIONS as readonly string[]).includes(f.section));
        process.stdout.write(humanReport({ ...run, findings: audit } as DomainReport));
        if (own.length > 0) {
          const lines = ['Monitor'];
          for (const f of own) {
            lines.push(`  ⚠ ${f.host ? `${f.host}: ` : ''}${f.message} [${f.code}]`);
            if (f.fix) lines.push('    fix:', ...f.fix.split('\n').map((l) => `      ${l}`));
          }
          process.stdout.write(`${lines.join('\n')}\n\n`);
        }
        process.stdout.write(
          `stored as check run ${run.id}; open alerts: ${open.length === 0 ? 'none' : open.map((a) => `${a.code}${a.subject ? ` (${a.subject})` : ''}`).join(', ')}\n`,
        );
      }
      process.exitCode = run.status === 'error' ? 2 : run.status === 'fail' ? 1 : 0;
    });
  });
}

// ---- records ----

/** Every DNS record of a stored domain, with its current policy id. */
export function recordSetFor(d: Domain, policyHostTargets?: string[]): RecordSet {
  return cliRecordSet(
    {
      domain: d.name,
      mode: d.mode,
      maxAge: d.maxAge,
      ttl: RECORD_TTL,
      mx: d.mx,
      id: d.policyId,
      rua: d.rua,
      policyHostTargets,
    },
    new Date(),
  );
}

function stsRecordLines(d: Domain): string[] {
  return [
    'Publish this TXT record (the policy id):',
    `  _mta-sts.${d.name}.\tTXT\t${quoteTxt(`v=STSv1; id=${d.policyId}`)}`,
  ];
}

/** Advice on stderr: max_age warnings and the record set's notes (policy host, testing mode). */
function printNotes(d: Domain, set?: RecordSet): void {
  for (const w of maxAgeWarnings(d.maxAge)) process.stderr.write(`${d.name}: warning: ${w.message}\n`);
  for (const note of set?.notes ?? []) process.stderr.write(`note: ${note}\n`);
}

function unknownDomain(name: string): CliError {
  return new CliError(2, `${name}: no such domain (see \`${mxguardCommand()} domain list\`)`);
}

function indent(text: string): string[] {
  return text
    .trimEnd()
    .split('\n')
    .map((line) => `  ${line}`);
}
