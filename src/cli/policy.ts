// `mxguard policy create|validate`: write and check MTA-STS policy files (RFC 8461 §3.2).
import { type Command, Option } from 'commander';
import type { Problem } from '../common/errors.js';
import { normalizeHost } from '../common/hostname.js';
import { PRESETS, presetNames } from '../common/presets.js';
import { MtaStsError } from '../mtasts/error.js';
import { validateMxPattern } from '../mtasts/match.js';
import {
  formatPolicy,
  MAX_AGE_LIMIT,
  ONE_WEEK,
  parsePolicy,
  STS_MODES,
  type StsMode,
  type StsPolicy,
} from '../mtasts/policy.js';
import { CliError, formatProblem, intOption, printJson, readInputBytes } from './util.js';

export function register(program: Command): void {
  const policy = program
    .command('policy')
    .description('Create and validate MTA-STS policy files (RFC 8461)')
    .addHelpText(
      'after',
      `
Examples:
  mxguard policy create --mx mx1.example.com '*.mail.example.net' > mta-sts.txt
  mxguard policy validate mta-sts.txt`,
    );

  policy
    .command('create')
    .description(
      'Print an MTA-STS policy file (the text served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt)',
    )
    .option('--mx <host...>', 'an MX host name or "*.domain" pattern; repeat the option or give several')
    .addOption(
      new Option('--mode <mode>', 'enforce, testing or none')
        .choices(STS_MODES as string[])
        .default('testing'),
    )
    .option(
      '--max-age <seconds>',
      `how long senders may cache the policy (at most ${MAX_AGE_LIMIT})`,
      `${ONE_WEEK}`,
    )
    .addOption(
      new Option('--preset <name>', 'add the mx patterns of a hosted mail service').choices(presetNames()),
    )
    .option('--json', 'print { policy, mode, maxAge, mx } as JSON')
    .addHelpText(
      'after',
      `
Start in mode testing (the default): senders report failures (TLS-RPT) but still deliver. Switch
to --mode enforce once the TLS-RPT reports are clean; enforce is the goal. A "*." pattern covers
exactly one label: *.example.com matches mx1.example.com, not example.com or a.b.example.com.

Examples:
  mxguard policy create --mx mx1.example.com --mx mx2.example.com
  mxguard policy create --mx mx1.example.com '*.backup.example.net' --mode enforce --max-age 1209600
  mxguard policy create --preset exchange-online --json
  mxguard policy create --mode none          # withdraw a policy: senders forget it after max_age`,
    )
    .action((opts: { mx?: string[]; mode: StsMode; maxAge: string; preset?: string; json?: boolean }) => {
      createPolicy(opts);
    });

  policy
    .command('validate')
    .description('Check a policy file against RFC 8461 §3.2 (exit 0 valid, 1 invalid, 2 unreadable)')
    .argument('<file>', 'the policy file, or - for standard input')
    .option('--json', 'print { file, valid, policy, errors, warnings } as JSON')
    .addHelpText(
      'after',
      `
Every error and warning is printed on its own line, naming the file and the line. A repeated
version, mode or max_age, blank lines and a byte-order mark are errors here, although senders
tolerate them: publish a clean file.

Examples:
  mxguard policy validate .well-known/mta-sts.txt
  curl -s https://mta-sts.example.com/.well-known/mta-sts.txt | mxguard policy validate -
  mxguard policy validate mta-sts.txt --json`,
    )
    .action((file: string, opts: { json?: boolean }) => {
      validatePolicyFile(file, opts);
    });
}

function createPolicy(opts: {
  mx?: string[];
  mode: StsMode;
  maxAge: string;
  preset?: string;
  json?: boolean;
}) {
  const maxAge = intOption('--max-age', opts.maxAge, 0, MAX_AGE_LIMIT);
  const requested = [...(opts.mx ?? []), ...(opts.preset ? PRESETS[opts.preset]!.mx : [])];
  const mx: string[] = [];
  for (const pattern of requested) {
    const invalid = validateMxPattern(pattern);
    if (invalid) throw new CliError(2, `--mx: ${invalid.message}`);
    if (!mx.some((m) => normalizeHost(m) === normalizeHost(pattern))) mx.push(pattern);
  }
  if (mx.length === 0 && opts.mode !== 'none') {
    throw new CliError(
      2,
      `--mx: mode ${opts.mode} needs at least one MX host (only --mode none may omit it)`,
    );
  }
  const policy: StsPolicy = { mode: opts.mode, maxAge, mx, extensions: [] };
  const text = formatPolicy(policy);
  // The generated file goes through the same strict check as `policy validate`.
  const { warnings } = parsePolicy(text, { strict: true });
  for (const w of warnings) process.stderr.write(`${formatProblem('policy create', w)}\n`);
  for (const note of opts.preset ? PRESETS[opts.preset]!.notes : []) {
    process.stderr.write(`policy create: note [PRESET] ${note}\n`);
  }
  if (opts.json) printJson({ policy: text, mode: policy.mode, maxAge: policy.maxAge, mx: policy.mx });
  else process.stdout.write(text);
}

function validatePolicyFile(file: string, opts: { json?: boolean }) {
  const name = file === '-' ? '<stdin>' : file;
  const result = checkPolicyText(readInputBytes(file));
  if (opts.json) {
    printJson({
      file,
      valid: result.policy !== undefined,
      ...(result.policy ? { policy: result.policy } : {}),
      errors: result.errors,
      warnings: result.warnings,
    });
  } else if (result.policy) {
    const p = result.policy;
    const lines = [`${name}: valid (mode ${p.mode}, max_age ${p.maxAge}, ${p.mx.length} mx)`];
    lines.push(...result.warnings.map((w) => formatProblem(name, w)));
    process.stdout.write(`${lines.join('\n')}\n`);
  } else {
    const count = result.errors.length;
    const lines = [`${name}: invalid (${count} error${count === 1 ? '' : 's'})`];
    lines.push(...[...result.errors, ...result.warnings].map((p) => formatProblem(name, p)));
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  if (!result.policy) process.exitCode = 1;
}

/** Strict validation of a policy file's bytes (which must be UTF-8). */
export function checkPolicyText(bytes: Uint8Array): {
  policy?: StsPolicy;
  errors: Problem[];
  warnings: Problem[];
} {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return {
      errors: [{ severity: 'error', code: 'MTASTS_POLICY_SYNTAX', message: 'the file is not valid UTF-8' }],
      warnings: [],
    };
  }
  try {
    const { policy, warnings } = parsePolicy(text, { strict: true });
    return { policy, errors: [], warnings };
  } catch (err) {
    if (err instanceof MtaStsError) return { errors: err.problems, warnings: err.warnings };
    throw err;
  }
}
