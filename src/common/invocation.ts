// How the person at the terminal runs mxguard, so that a printed next step ("mxguard domain add …")
// is a command that works where they are: `npx mxguard` under npm (`npm start` in a clone), the
// plain `mxguard` from a global install on PATH, otherwise `node PATH/TO/main.js` as they started it.
import { delimiter, dirname, isAbsolute, relative, resolve } from 'node:path';

/** The command prefix for hints, e.g. `${mxguardCommand()} domain list`. */
export function mxguardCommand(
  env: NodeJS.ProcessEnv = process.env,
  script: string = process.argv[1] ?? '',
  cwd: string = process.cwd(),
): string {
  const userCwd = env.INIT_CWD || cwd; // where the user typed `npm start` (npm runs it in the root)
  // npm sets npm_lifecycle_event for `npm start`/`npm run` and `npx`, and npm_config_local_prefix to
  // the project it found: npx runs this package's bin from its own clone (or a project that
  // installed it) anywhere under that folder.
  const project = env.npm_config_local_prefix;
  if (env.npm_lifecycle_event && project && inside(project, script) && inside(project, userCwd))
    return 'npx mxguard';
  // A bin link named mxguard in a directory on PATH: what `npm install -g` makes.
  const onPath = (env.PATH ?? '').split(delimiter).includes(dirname(script));
  if (script.endsWith('/mxguard') && onPath) return 'mxguard';
  if (script === '') return 'mxguard';
  const path = inside(userCwd, script) ? relative(userCwd, script) : script;
  return `node ${shellWord(path)}`;
}

/**
 * ` --data-dir DIR` for a hint about the store in `dataDir`, or nothing when the default `./data`
 * from where the user is (npm's INIT_CWD under `npm start`, run from any folder of the clone) is it.
 */
export function dataDirHint(
  dataDir: string,
  defaultDir: string,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): string {
  const userCwd = env.INIT_CWD || cwd;
  const dir = resolve(cwd, dataDir);
  return dir === resolve(userCwd, defaultDir) ? '' : ` --data-dir ${shellWord(dir)}`;
}

function inside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return !rel.startsWith('..') && !isAbsolute(rel);
}

/** A path as one POSIX shell word (quoted only when it needs to be). */
function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}
