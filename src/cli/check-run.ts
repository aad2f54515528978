// The check run `mxguard check` and `mxguard worker` share: the options that decide how domains are checked
// (concurrency, the per-host connection limit, the run cache, old TLS versions, DKIM selectors, a preset, the
// network options) and the set-up that turns them into one function checking a domain, so a domain checked
// by a worker from the queue gets exactly the audit `check --file` gives it.
import { createReadStream } from 'node:fs';
import type { Command } from 'commander';
import { checkDomain, type DomainCheck } from '../check/run.js';
import { DEFAULT_PER_HOST_CONCURRENCY, RunCache } from '../check/run-cache.js';
import type { CheckEnvironment, DomainReport } from '../check/types.js';
import { PRESETS, presetNames } from '../common/presets.js';
import { CachingResolver } from '../dns/cache.js';
import { isValidHostname, normalizeName } from '../dns/names.js';
import { addNetworkOptions, type NetworkOptions, networkFromOptions } from './netopts.js';
import { CliError, collect, intOption } from './util.js';

export interface CheckRunOptions extends NetworkOptions {
  concurrency: string;
  perHostConcurrency: string;
  cache: boolean;
  tlsVersions?: boolean;
  dkimSelector?: string[];
  preset?: string;
}

/** The options of a check run, then the network options (`addNetworkOptions`). */
export function addCheckRunOptions(command: Command): Command {
  command
    // 32: where domains/s stops rising on a two-core machine (BENCHMARKS.md, check at survey scale).
    .option('--concurrency <n>', 'domains checked at the same time (with several domains)', '32')
    .option(
      '--per-host-concurrency <n>',
      'SMTP connections to one MX address at a time (each address is probed once per MX name in a run)',
      String(DEFAULT_PER_HOST_CONCURRENCY),
    )
    .option(
      '--no-cache',
      'check every domain as if alone: no DNS answers, probes or policies shared in the run',
    )
    .option(
      '--tls-versions',
      'with several domains: also ask every MX address whether it still accepts TLS 1.0/1.1 (one more connection each)',
    )
    .option('--dkim-selector <selector>', 'DKIM selector to check (repeatable)', collect)
    .option(
      '--preset <name>',
      `the provider the domain's mail is at (${presetNames().join(', ')}): its DKIM selectors, and the Provider section`,
    );
  return addNetworkOptions(command);
}

export interface CheckRun {
  /** Domains to check at the same time (--concurrency). */
  concurrency: number;
  /** Checks one domain (already normalised); a check that throws comes back as status error. */
  check(domain: string, previousPolicy?: PreviousPolicy): Promise<DomainCheck>;
}

/** What `--state` remembers of a domain's policy for the "id unchanged" check. */
export type PreviousPolicy = CheckEnvironment['previousPolicy'];

/**
 * Checks the options and the resolver (exit 2 when it cannot be reached) and sets up one run: one DNS cache
 * for all domains (src/dns/cache.ts), one SMTP probe per (address, port, MX name) and one policy fetch per
 * policy host (src/check/run-cache.ts), unless --no-cache. `bulk`: several domains in this run.
 */
export async function prepareCheckRun(opts: CheckRunOptions, { bulk }: { bulk: boolean }): Promise<CheckRun> {
  const concurrency = intOption('--concurrency', opts.concurrency, 1, 256);
  const perHost = intOption('--per-host-concurrency', opts.perHostConcurrency, 1, 64);
  const preset = opts.preset === undefined ? undefined : PRESETS[opts.preset];
  if (opts.preset !== undefined && !preset)
    throw new CliError(2, `--preset: unknown preset "${opts.preset}"`);
  const network = await networkFromOptions(opts);
  const validating = await network.resolver.checkValidating();
  if (validating.result.outcome === 'timeout' || validating.result.outcome === 'error') {
    const servers = network.servers.map((s) => `${s.host}:${s.port}`).join(', ');
    throw new CliError(
      2,
      `resolver unreachable (${servers}): ${validating.result.error ?? validating.result.outcome}`,
    );
  }
  const resolver = opts.cache ? new CachingResolver(network.resolver) : network.resolver;
  const shared = opts.cache ? new RunCache({ perHostConcurrency: perHost }) : undefined;
  const dkimSelectors = [...new Set([...(opts.dkimSelector ?? []), ...(preset?.dkimSelectors ?? [])])];
  const environment = (previousPolicy: PreviousPolicy): CheckEnvironment => ({
    resolver,
    dnssecValidating: validating.validating,
    ca: network.ca,
    allowPrivate: network.allowPrivate,
    timeoutMs: network.timeoutMs,
    smtpPort: network.smtpPort,
    httpsPort: network.httpsPort,
    dkimSelectors,
    preset,
    previousPolicy,
    now: new Date(),
    probeSmtp: shared?.probeSmtp,
    fetchPolicy: shared?.fetchPolicy,
    // A bulk run stays at one connection per MX address and name unless --tls-versions asks for more.
    oldTlsProbe: bulk && !opts.tlsVersions ? 'on-failure' : 'always',
  });
  return {
    concurrency,
    async check(domain, previousPolicy) {
      try {
        return await checkDomain(domain, environment(previousPolicy));
      } catch (err) {
        return { domain, status: 'error', findings: [], error: `internal error: ${(err as Error).message}` };
      }
    },
  };
}

/** A domain as given (a line of a list, an argument), normalised; CliError naming it when it is not one. */
export function checkedDomain(input: string): string {
  const domain = normalizeName(input.trim());
  if (!isValidHostname(domain)) throw new CliError(2, `${input}: not a valid domain name`);
  return domain;
}

/** The documented JSON schema: {domain, status, findings[, error]} (the policy state stays internal). */
export function publicReport(result: DomainCheck): DomainReport {
  const { domain, status, findings, error } = result;
  return error === undefined ? { domain, status, findings } : { domain, status, findings, error };
}

/** Exit status of one domain's result: 2 could not run, 1 a fail, 0 otherwise. */
export function exitCodeOf(result: DomainReport): number {
  if (result.status === 'error') return 2;
  return result.status === 'fail' ? 1 : 0;
}

/** Longest line of a domain list kept (a domain name has at most 253 characters); the rest is read past. */
export const LIST_LINE_MAX = 4096;

/**
 * The lines of a domain list (`-`: standard input) that name something, trimmed, without blanks and # comments,
 * with their line numbers; read as a stream (bounded memory: a line is kept up to LIST_LINE_MAX characters and
 * the rest of it skipped, so an endless line costs nothing). CliError (exit 2) when it cannot be read.
 */
export async function* listedLines(path: string): AsyncGenerator<{ text: string; line: number }> {
  const input = createReadStream(path === '-' ? '/dev/stdin' : path, { encoding: 'utf8' });
  await new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve());
    input.once('error', (err) =>
      reject(new CliError(2, `${path}: cannot read: ${(err as NodeJS.ErrnoException).code}`)),
    );
  });
  let line = 0;
  let kept = '';
  const named = (raw: string) => {
    line++;
    const text = raw.replace(/#.*/, '').trim();
    return text ? { text, line } : undefined;
  };
  for await (const chunk of input as AsyncIterable<string>) {
    let start = 0;
    for (let end = chunk.indexOf('\n'); end >= 0; start = end + 1, end = chunk.indexOf('\n', start)) {
      const item = named(keep(kept, chunk.slice(start, end)));
      kept = '';
      if (item) yield item;
    }
    kept = keep(kept, chunk.slice(start));
  }
  const last = kept === '' ? undefined : named(kept);
  if (last) yield last;
}

/** `kept` and then `more`, cut at LIST_LINE_MAX + 1 characters (one more than allowed marks it too long). */
function keep(kept: string, more: string): string {
  return kept.length > LIST_LINE_MAX ? kept : (kept + more).slice(0, LIST_LINE_MAX + 1);
}
