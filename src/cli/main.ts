#!/usr/bin/env node
// mxguard command line: one file per command under src/cli/, wired together here.
import { Command, CommanderError } from 'commander';
import { register as registerCheck } from './check.js';
import { register as registerDomain } from './domain.js';
import { register as registerPolicy } from './policy.js';
import { register as registerPolicyd } from './policyd.js';
import { register as registerPublish } from './publish.js';
import { register as registerRecords } from './records.js';
import { register as registerReports } from './reports.js';
import { register as registerServe } from './serve.js';
import { register as registerTlsa } from './tlsa.js';
import { CliError } from './util.js';

const program = new Command('mxguard')
  .description('MTA-STS, TLS-RPT and DANE for any mail domain: generate, check, serve and enforce.')
  .version('0.1.0')
  .exitOverride()
  .enablePositionalOptions()
  .showHelpAfterError('(add --help for usage and examples)')
  .configureHelp({ sortSubcommands: true });

registerCheck(program);
registerDomain(program);
registerPolicy(program);
registerPolicyd(program);
registerRecords(program);
registerTlsa(program);
registerReports(program);
registerPublish(program);
registerServe(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = exitCodeFor(err);
}

function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) {
    // --help and --version end through here with exit code 0; usage errors were already printed.
    return err.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof CliError) {
    process.stderr.write(`mxguard: ${err.message}\n`);
    return err.exitCode;
  }
  process.stderr.write(`mxguard: internal error: ${(err as Error)?.message ?? String(err)}\n`);
  if (process.env.MXGUARD_DEBUG) process.stderr.write(`${(err as Error)?.stack}\n`);
  return 2;
}
