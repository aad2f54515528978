// The settings loader of every long-running command (`serve`, `policyd`): a JSON config file, then
// environment variables, then command-line options, each later source overriding the earlier ones key
// by key. Every source is checked against the command's zod schema, and every problem names where it
// came from: the file and key (`/etc/mxguard/policyd.json: listen: ...`), the variable
// (`MXGUARD_POLICYD_LISTEN: ...`) or the option (`--listen: ...`). The command's own module adds its
// defaults and the rules that span several keys.
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { parseHostPort } from '../common/host-port.js';

/** A config problem; `problems` has one line per wrong key, each naming where it came from. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

/** Settings as one source gives them: plain objects, key by key. */
export type Layer = Record<string, unknown>;

/** What a command tells the loader about its settings. */
export interface ConfigSpec<T extends Layer> {
  /** What every source is checked against: a partial, strict zod object (unknown keys are errors). */
  schema: z.ZodType<T>;
  /** Environment names: the prefix plus the key in SCREAMING_SNAKE_CASE (envName); `${prefix}CONFIG` names the file. */
  envPrefix: string;
  /** Keys (dotted paths) read from the environment; [key, variable] where the name is not the derived one. */
  envKeys: ReadonlyArray<string | readonly [key: string, variable: string]>;
  /** The command-line option of each key that has one (`dataDir` -> `--data-dir`). */
  options: Readonly<Record<string, string>>;
  /** Text from the environment or an option, as the type the schema wants for `key`. */
  fromText?: (key: string, text: string) => unknown;
  /** Relative paths in a layer made absolute: against the file's folder, or the working directory. */
  resolvePaths?: (layer: T, abs: (path: string) => string) => T;
  /**
   * Old top-level file keys still read, each with its new key; read for one release, with a warning.
   * A key that kept its name but took text (`"timeout": "30"`) maps to itself: its text is converted.
   */
  deprecatedKeys?: Readonly<Record<string, string>>;
}

export interface ConfigInput {
  /** The option values the user gave, by key (text, lists of text, flags); undefined = not given. */
  options: Readonly<Record<string, unknown>>;
  /** --config; without it, the variable `${envPrefix}CONFIG`. */
  configFile?: string;
  env: NodeJS.ProcessEnv;
  /** Relative paths on the command line and in the environment are relative to this. */
  cwd: string;
}

export interface LoadedConfig<T> {
  /** file < environment < options, merged key by key (inside nested objects too). */
  merged: T;
  /** The config file read (absolute), if any. */
  configFile?: string;
  /** Deprecation notices, each naming the file and the key. */
  warnings: string[];
}

/** Largest config file read (a config is a few KB). */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** The variable of a key: `MXGUARD_` + `tlsListen` -> `MXGUARD_TLS_LISTEN`, `imap.password` -> `MXGUARD_IMAP_PASSWORD`. */
export function envName(prefix: string, key: string): string {
  const snake = key
    .split('.')
    .map((part) => part.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase())
    .join('_');
  return `${prefix}${snake}`;
}

/** The config file's variable: MXGUARD_CONFIG for the prefix MXGUARD_. */
export function configFileVariable(prefix: string): string {
  return `${prefix}CONFIG`;
}

/** Read, check and merge every source; throws ConfigError listing every problem at once. */
export function loadConfig<T extends Layer>(spec: ConfigSpec<T>, input: ConfigInput): LoadedConfig<T> {
  const problems: string[] = [];
  const warnings: string[] = [];
  const configPath = input.configFile ?? nonEmpty(input.env[configFileVariable(spec.envPrefix)]);
  let configFile: string | undefined;
  let fileLayer = {} as T;
  if (configPath !== undefined) {
    configFile = resolve(input.cwd, configPath);
    fileLayer = readConfigFile(spec, configFile, problems, warnings);
  }
  const envLayer = envSettings(spec, input.env, input.cwd, problems);
  const optionLayer = optionSettings(spec, input.options, input.cwd, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return { merged: mergeLayers([fileLayer, envLayer, optionLayer]) as T, configFile, warnings };
}

/**
 * One top-level key of a config file (undefined when absent), for commands that read a single setting
 * of serve's file (the CLI's `database`); throws ConfigError naming the file when it cannot be read.
 */
export function readConfigKey(file: string, key: string): unknown {
  const problems: string[] = [];
  const raw = readJsonFile(file, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  if (!isPlainObject(raw)) throw new ConfigError([`${file}: expected a JSON object`]);
  return raw[key];
}

/** The parsed JSON of a config file, or undefined with the problem pushed (size cap, unreadable, bad JSON). */
function readJsonFile(file: string, problems: string[]): unknown {
  let text: string;
  try {
    if (statSync(file).size > MAX_CONFIG_BYTES) {
      problems.push(`${file}: larger than ${MAX_CONFIG_BYTES} bytes: not a config file`);
      return undefined;
    }
    text = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    problems.push(`${file}: not valid JSON: ${(err as Error).message}`);
    return undefined;
  }
}

function readConfigFile<T extends Layer>(
  spec: ConfigSpec<T>,
  file: string,
  problems: string[],
  warnings: string[],
): T {
  const before = problems.length;
  let raw = readJsonFile(file, problems);
  if (problems.length > before) return {} as T;
  if (spec.deprecatedKeys && isPlainObject(raw)) {
    raw = renameDeprecated(spec, raw, file, problems, warnings);
  }
  const layer = check(spec, raw, (key) => (key === '' ? file : `${file}: ${key}`), problems);
  return relativeTo(spec, layer, dirname(file));
}

/** Old keys to new ones, with a warning naming each; an old key beside its new one is an error. */
function renameDeprecated<T extends Layer>(
  spec: ConfigSpec<T>,
  raw: Layer,
  file: string,
  problems: string[],
  warnings: string[],
): Layer {
  const out: Layer = {};
  for (const [key, value] of Object.entries(raw)) {
    const renamed = spec.deprecatedKeys?.[key];
    if (renamed === undefined) {
      out[key] = value;
      continue;
    }
    const converted = typeof value === 'string' && spec.fromText ? spec.fromText(renamed, value) : value;
    if (renamed === key) {
      out[key] = converted;
      if (converted !== value) {
        warnings.push(
          `${file}: ${key}: ${JSON.stringify(value)} as text is deprecated: write ${JSON.stringify(converted)}`,
        );
      }
      continue;
    }
    if (renamed in raw) {
      problems.push(`${file}: "${key}" and "${renamed}" both given: keep only "${renamed}"`);
      continue;
    }
    out[renamed] = converted;
    warnings.push(
      `${file}: "${key}" is deprecated: use "${renamed}" (the old keys are read until the next release)`,
    );
  }
  return out;
}

function envSettings<T extends Layer>(
  spec: ConfigSpec<T>,
  env: NodeJS.ProcessEnv,
  cwd: string,
  problems: string[],
): T {
  const raw: Layer = {};
  const names = new Map<string, string>();
  for (const entry of spec.envKeys) {
    const [key, name] = typeof entry === 'string' ? [entry, envName(spec.envPrefix, entry)] : entry;
    const value = nonEmpty(env[name]);
    if (value === undefined) continue;
    names.set(key, name);
    setPath(raw, key, spec.fromText ? spec.fromText(key, value) : value);
  }
  return relativeTo(
    spec,
    check(spec, raw, (key) => sourceOf(names, key), problems),
    cwd,
  );
}

function optionSettings<T extends Layer>(
  spec: ConfigSpec<T>,
  options: Readonly<Record<string, unknown>>,
  cwd: string,
  problems: string[],
): T {
  const raw: Layer = {};
  const names = new Map<string, string>();
  for (const [key, option] of Object.entries(spec.options)) {
    const value = options[key];
    if (value === undefined) continue;
    names.set(key, option);
    setPath(raw, key, typeof value === 'string' && spec.fromText ? spec.fromText(key, value) : value);
  }
  return relativeTo(
    spec,
    check(spec, raw, (key) => sourceOf(names, key), problems),
    cwd,
  );
}

/** The variable or option that set `key` (or the object holding it). */
function sourceOf(names: Map<string, string>, key: string): string {
  const parts = key.split('.');
  for (let n = parts.length; n > 0; n--) {
    const name = names.get(parts.slice(0, n).join('.'));
    if (name !== undefined) return name;
  }
  return key;
}

function check<T extends Layer>(
  spec: ConfigSpec<T>,
  raw: unknown,
  where: (key: string) => string,
  problems: string[],
): T {
  const result = spec.schema.safeParse(raw);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    problems.push(`${where(issue.path.map(String).join('.'))}: ${describeIssue(issue)}`);
  }
  return {} as T;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  }
  return issue.message;
}

function relativeTo<T extends Layer>(spec: ConfigSpec<T>, layer: T, base: string): T {
  if (!spec.resolvePaths) return layer;
  return spec.resolvePaths(layer, (p) => (isAbsolute(p) ? p : resolve(base, p)));
}

/** Later layers win, key by key; nested objects are merged the same way, lists are replaced. */
function mergeLayers(layers: Layer[]): Layer {
  const merged: Layer = {};
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) {
      if (value === undefined) continue;
      const before = merged[key];
      merged[key] = isPlainObject(value) && isPlainObject(before) ? mergeLayers([before, value]) : value;
    }
  }
  return merged;
}

// ---- the value types commands share ----

/** HOST:PORT or [IPv6]:PORT (port 0 picks a free port). */
export const hostPort = z.string().transform((text, ctx) => {
  const parsed = parseHostPort(text);
  if (parsed) return parsed;
  ctx.addIssue({
    code: 'custom',
    message: `expected HOST:PORT or [IPv6]:PORT, got "${text}"`,
  });
  return z.NEVER;
});

/** A whole number from min to max, with an error that says so. */
export function wholeNumber(min: number, max: number) {
  const range = `must be a whole number from ${min} to ${max}`;
  return z.int(range).min(min, range).max(max, range);
}

/** Text for a number key: digits become the number, anything else stays text for the schema to refuse. */
export function numberText(text: string): unknown {
  return /^\d+$/.test(text.trim()) ? Number(text.trim()) : text;
}

/** Text for a yes/no key: true or false; anything else stays text for the schema to refuse. */
export function booleanText(text: string): unknown {
  if (text.trim() === 'true') return true;
  if (text.trim() === 'false') return false;
  return text;
}

/** "a, b,c" -> ["a", "b", "c"]. */
export function commaList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

// ---- small helpers ----

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

function isPlainObject(value: unknown): value is Layer {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function setPath(target: Layer, key: string, value: unknown): void {
  const parts = key.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    if (!isPlainObject(node[part])) node[part] = {};
    node = node[part] as Layer;
  }
  node[parts[parts.length - 1]!] = value;
}
