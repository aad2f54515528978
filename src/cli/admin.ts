// `mxguard admin reset-password|unlock`: recovery for the admin login of `mxguard serve`, run on the
// server by whoever can read its data directory (also while serve runs: they share the store).
// reset-password sets a new admin password (generated and printed once, or read from stdin or
// MXGUARD_ADMIN_PASSWORD), ends every session and clears the login throttle, in the store every serve
// worker reads. unlock only clears the throttle: for an admin who knows the password but whose address
// was locked by others' bad guesses (e.g. everyone behind a proxy without trustProxy). API tokens stay.
import type { Command } from 'commander';
import { generatePassword, hashPassword, PASSWORD_ENV, passwordProblem } from '../server/auth.js';
import type { Store } from '../store/types.js';
import { type StoreOptions, storeOptions, withStore } from './store-options.js';
import { CliError, readInputText } from './util.js';

const EXIT_STATUS = `
Exit status: 0 done, 2 usage error: a bad option value, a password that is too short, or no mxguard
database in the data directory.`;

type AdminOptions = StoreOptions;

export function register(program: Command): void {
  const admin = program
    .command('admin')
    .description('recover the admin login of `mxguard serve`: new password, or unlock the login throttle')
    .addHelpText(
      'after',
      `
Examples:
  $ mxguard admin reset-password --data-dir /var/lib/mxguard
      prints a new generated admin password; every session ends, the login throttle is cleared
  $ printf '%s\\n' "$NEW_PASSWORD" | mxguard admin reset-password --password-stdin
  $ mxguard admin unlock --data-dir /var/lib/mxguard
      clears the login throttle only (the password and the sessions stay)
${EXIT_STATUS}`,
    );

  storeOptions(
    admin
      .command('reset-password')
      .description(
        `set a new admin password (generated, or from --password-stdin or ${PASSWORD_ENV}), end every session, clear the login throttle`,
      )
      .option('--password-stdin', 'read the new password from the first line of stdin'),
  ).action(async (options: AdminOptions & { passwordStdin?: boolean }) => {
    const chosen = chosenPassword(options.passwordStdin === true);
    const password = chosen?.password ?? generatePassword();
    const hash = await hashPassword(password);
    await withStore(options, async (store) => {
      await store.setAdminPassword(hash);
      await store.clearAuthAttempts();
    });
    if (chosen === undefined) process.stdout.write(`new admin password: ${password}\n`);
    say(
      `${chosen ? `admin password set from ${chosen.source}` : 'admin password set'}; every session ended, the login throttle cleared`,
    );
  });

  storeOptions(
    admin
      .command('unlock')
      .description('clear the login throttle of every address (the password and the sessions stay)'),
  ).action(async (options: AdminOptions) => {
    await withStore(options, (store: Store) => store.clearAuthAttempts());
    say('the login throttle is cleared');
  });
}

/** The password from stdin (first line) or the environment; undefined = generate one. */
function chosenPassword(fromStdin: boolean): { password: string; source: string } | undefined {
  let chosen: { password: string; source: string } | undefined;
  if (fromStdin) chosen = { password: readInputText('-', 64 * 1024).split(/\r?\n/)[0]!, source: 'stdin' };
  else if (process.env[PASSWORD_ENV]) chosen = { password: process.env[PASSWORD_ENV], source: PASSWORD_ENV };
  if (chosen === undefined) return undefined;
  const problem = passwordProblem(chosen.password);
  if (problem !== undefined) throw new CliError(2, `${chosen.source}: ${problem}`);
  return chosen;
}

function say(line: string): void {
  process.stderr.write(`mxguard admin: ${line}\n`);
}
