// The options of every command that opens the store (`--data-dir`, `--database`) and opening it for
// one command (withStore): which database wins is src/store/index.ts chooseDatabase (--database >
// MXGUARD_DATABASE_URL > `database` in serve's config file, named by --config or MXGUARD_CONFIG >
// <data-dir>/mxguard.sqlite). Store failures become CLI errors (exit 2; 1 for "already exists").
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { mxguardCommand } from '../common/invocation.js';
import { ConfigError, configFileVariable, readConfigKey } from '../config/load.js';
import {
  chooseDatabase,
  DATABASE_ENV,
  DEFAULT_DATA_DIR,
  describeDatabase,
  openStore,
  resolveDatabasePath,
  type Store,
  StoreError,
} from '../store/index.js';
import { CliError } from './util.js';

/** The variable naming serve's config file (MXGUARD_CONFIG), read for its `database` key. */
const CONFIG_ENV = configFileVariable('MXGUARD_');

export interface StoreOptions {
  dataDir: string;
  database?: string;
  /** serve's config file, on the commands that take --config (`domain add|set`). */
  config?: string;
}

export const DATABASE_HELP = `the database: postgres://user:pass@host:5432/db?sslmode=require, or a SQLite file (default: mxguard.sqlite in the data directory); also ${DATABASE_ENV} (keeps the password out of the process list) or "database" in serve's config file (MXGUARD_CONFIG)`;

/** `--database URL`: on every command that opens the store, serve included. */
export function databaseOption(command: Command): Command {
  return command.option('--database <url>', DATABASE_HELP);
}

/** `--data-dir` and `--database`, as every command that opens the store takes them. */
export function storeOptions(command: Command): Command {
  command.option(
    '--data-dir <dir>',
    'where the database lives (the same as `mxguard serve --data-dir`); only `serve`, `domain add` and `check --enqueue` create one',
    DEFAULT_DATA_DIR,
  );
  return databaseOption(command);
}

/**
 * The database the options, the environment and serve's config file choose (undefined: the default
 * in the data directory); a bad value is a usage error (exit 2) naming where it came from.
 */
export function chosenDatabase(
  options: { database?: string; config?: string },
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const configFile = options.config ?? nonEmpty(env[CONFIG_ENV]);
  try {
    let config: string | undefined;
    if (
      configFile !== undefined &&
      options.database === undefined &&
      nonEmpty(env[DATABASE_ENV]) === undefined
    ) {
      config = configDatabase(resolve(configFile));
    }
    return chooseDatabase({ option: options.database, env, config, configFile });
  } catch (err) {
    if (err instanceof StoreError || err instanceof ConfigError) throw new CliError(2, err.message);
    throw err;
  }
}

/** `database` of the config file; a relative SQLite path is relative to the file's folder, as serve reads it. */
function configDatabase(file: string): string | undefined {
  const value = readConfigKey(file, 'database');
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new ConfigError([`${file}: database: expected text`]);
  return resolveDatabasePath(value, dirname(file));
}

/**
 * Open the store the options name, run `work`, close it; store failures become CLI errors. A store
 * that does not exist yet is refused (exit 2, nothing created) unless `create` (`domain add`, `check --enqueue`).
 */
export async function withStore<T>(
  options: StoreOptions,
  work: (store: Store) => Promise<T>,
  { create = false, bulk = false }: { create?: boolean; bulk?: boolean } = {},
): Promise<T> {
  const database = chosenDatabase(options);
  let store: Store;
  try {
    store = await openStore(options.dataDir, { database, mustExist: !create, bulk });
  } catch (err) {
    if (err instanceof StoreError && err.code === 'STORE_MISSING') {
      const mxguard = mxguardCommand();
      const where = storeArgument(options, database);
      throw new CliError(
        2,
        `${err.message}; create one with \`${mxguard} serve${where}\` or \`${mxguard} domain add DOMAIN --mx HOST${where}\``,
      );
    }
    throw toCliError(err, database);
  }
  try {
    return await work(store);
  } catch (err) {
    throw toCliError(err, database);
  } finally {
    await store.close();
  }
}

/**
 * The option that names this store again in a printed next step: ` --database X` (password masked)
 * when it was given, nothing when the environment or the config file chose it, else ` --data-dir DIR`.
 */
export function storeArgument(options: StoreOptions, database = chosenDatabase(options)): string {
  if (options.database !== undefined) return ` --database ${describeDatabase(options.database)}`;
  return database === undefined ? ` --data-dir ${options.dataDir}` : '';
}

function toCliError(err: unknown, database: string | undefined): unknown {
  if (!(err instanceof StoreError)) return err;
  // A message from the database driver may repeat the URL it was given: never its password.
  const message =
    database === undefined ? err.message : err.message.replaceAll(database, describeDatabase(database));
  return new CliError(err.code === 'STORE_DOMAIN_EXISTS' ? 1 : 2, message);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
