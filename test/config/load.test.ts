// The shared settings loader (src/config/load.ts): file < environment < options key by key, every
// problem named by its file and key, variable or option, the variable names derived from the keys, and
// old file keys read with a warning. A small schema stands in for a command's.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { z } from 'zod';
import {
  type ConfigInput,
  type ConfigSpec,
  commaList,
  envName,
  hostPort,
  loadConfig,
  MAX_CONFIG_BYTES,
  numberText,
  wholeNumber,
} from '../../src/config/load.js';
import { configFolder, problemsOf } from '../helpers/config.js';

const folder = configFolder('config');
const dir = folder.dir;
const file = folder.write;

const schema = z
  .object({
    listen: hostPort,
    dataDir: z.string().min(1),
    workers: wholeNumber(1, 64),
    resolver: z.array(z.string().min(1)),
    imap: z
      .object({ host: z.string(), password: z.string().min(4) })
      .partial()
      .strict(),
  })
  .partial()
  .strict();
type Layer = z.infer<typeof schema>;

const spec: ConfigSpec<Layer> = {
  schema,
  envPrefix: 'MXGUARD_TEST_',
  envKeys: ['listen', 'dataDir', 'workers', 'imap.password', ['resolver', 'MXGUARD_TEST_DNS']],
  options: { listen: '--listen', dataDir: '--data-dir', workers: '--workers', resolver: '--resolver' },
  fromText: (key, text) => {
    if (key === 'workers') return numberText(text);
    if (key === 'resolver') return commaList(text);
    return text;
  },
  resolvePaths: (layer, abs) =>
    layer.dataDir === undefined ? layer : { ...layer, dataDir: abs(layer.dataDir) },
  deprecatedKeys: { 'data-dir': 'dataDir', workers: 'workers' },
};

function load(input: Partial<ConfigInput>) {
  return loadConfig(spec, { options: {}, env: {}, cwd: '/srv/app', ...input });
}

function problems(input: Partial<ConfigInput>): string[] {
  return problemsOf(() => load(input));
}

describe('config loader: sources and precedence', () => {
  it('derives variable names from keys: prefix + SCREAMING_SNAKE_CASE, dots as underscores', () => {
    assert.equal(envName('MXGUARD_', 'tlsListen'), 'MXGUARD_TLS_LISTEN');
    assert.equal(envName('MXGUARD_', 'imap.password'), 'MXGUARD_IMAP_PASSWORD');
    assert.equal(envName('MXGUARD_POLICYD_', 'idCheckInterval'), 'MXGUARD_POLICYD_ID_CHECK_INTERVAL');
    assert.equal(envName('MXGUARD_', 'listen'), 'MXGUARD_LISTEN');
  });

  it('file < environment < options, key by key', () => {
    const config = file({ listen: '127.0.0.1:1', workers: 2, dataDir: 'from-file' });
    const both = load({
      configFile: config,
      env: { MXGUARD_TEST_LISTEN: '127.0.0.1:2', MXGUARD_TEST_WORKERS: '3' },
      options: { listen: '127.0.0.1:3' },
    });
    assert.deepEqual(both.merged.listen, { host: '127.0.0.1', port: 3 });
    assert.equal(both.merged.workers, 3);
    assert.equal(both.merged.dataDir, join(dir, 'from-file'));
    assert.equal(both.configFile, config);
    assert.deepEqual(both.warnings, []);
  });

  it('merges nested objects key by key: a secret from the environment beside the file section', () => {
    const config = file({ imap: { host: 'imap.example.test', password: 'from-file' } });
    const merged = load({ configFile: config, env: { MXGUARD_TEST_IMAP_PASSWORD: 'from-env' } }).merged;
    assert.deepEqual(merged.imap, { host: 'imap.example.test', password: 'from-env' });
  });

  it('finds the file through PREFIX_CONFIG; the option wins over it', () => {
    const a = file({ workers: 4 });
    const b = file({ workers: 5 });
    assert.equal(load({ env: { MXGUARD_TEST_CONFIG: a } }).merged.workers, 4);
    assert.equal(load({ configFile: b, env: { MXGUARD_TEST_CONFIG: a } }).merged.workers, 5);
  });

  it('reads a variable under its given name, text converted; empty variables are unset', () => {
    const merged = load({ env: { MXGUARD_TEST_DNS: '127.0.0.1, ::1', MXGUARD_TEST_LISTEN: ' ' } }).merged;
    assert.deepEqual(merged.resolver, ['127.0.0.1', '::1']);
    assert.equal(merged.listen, undefined);
  });

  it('resolves paths against the file folder, or the working directory for variables and options', () => {
    assert.equal(load({ configFile: file({ dataDir: 'state' }) }).merged.dataDir, join(dir, 'state'));
    assert.equal(load({ env: { MXGUARD_TEST_DATA_DIR: 'state' } }).merged.dataDir, '/srv/app/state');
    assert.equal(load({ options: { dataDir: '/abs' } }).merged.dataDir, '/abs');
  });
});

describe('config loader: deprecated keys', () => {
  it('reads an old key as its new one, with a warning naming both and the file', () => {
    const config = file({ 'data-dir': 'old' });
    const loaded = load({ configFile: config });
    assert.equal(loaded.merged.dataDir, join(dir, 'old'));
    assert.equal(loaded.warnings.length, 1);
    assert.match(loaded.warnings[0]!, /config-\d+\.json: "data-dir" is deprecated: use "dataDir"/);
    assert.ok(loaded.warnings[0]!.startsWith(config));
  });

  it('reads text where a number is now wanted, with a warning; a number as is, without', () => {
    const loaded = load({ configFile: file({ workers: '7' }) });
    assert.equal(loaded.merged.workers, 7);
    assert.match(loaded.warnings[0] ?? '', /: workers: "7" as text is deprecated: write 7/);
    assert.deepEqual(load({ configFile: file({ workers: 7 }) }).warnings, []);
  });

  it('refuses an old key beside its new one', () => {
    const found = problems({ configFile: file({ 'data-dir': 'a', dataDir: 'b' }) });
    assert.ok(
      found.some((p) => /: "data-dir" and "dataDir" both given/.test(p)),
      found.join('\n'),
    );
  });
});

describe('config loader: every problem names its source', () => {
  it('file not JSON', () => {
    assert.match(problems({ configFile: file('{ "listen": ') })[0] ?? '', /config-\d+\.json: not valid JSON/);
  });

  it('file missing', () => {
    assert.match(
      problems({ configFile: join(dir, 'absent.json') })[0] ?? '',
      /absent\.json: cannot read: ENOENT/,
    );
  });

  it('file too large', () => {
    const big = file(`{"dataDir": "${'x'.repeat(MAX_CONFIG_BYTES)}"}`);
    assert.match(problems({ configFile: big })[0] ?? '', /config-\d+\.json: larger than \d+ bytes/);
  });

  it('file not an object', () => {
    const config = file([1, 2]);
    assert.ok(problems({ configFile: config }).some((p) => p.startsWith(`${config}: `)));
  });

  it('file: unknown key, nested unknown key, bad value, each with its key', () => {
    const config = file({ lisen: 'x', imap: { hots: 'x' }, listen: 'nowhere', workers: 0 });
    const found = problems({ configFile: config });
    for (const pattern of [
      /: unknown key "lisen"$/,
      /: imap: unknown key "hots"$/,
      /: listen: expected HOST:PORT or \[IPv6\]:PORT, got "nowhere"$/,
      /: workers: must be a whole number from 1 to 64$/,
    ]) {
      assert.ok(
        found.some((p) => p.startsWith(`${config}: `) && pattern.test(p)),
        `${pattern}:\n${found.join('\n')}`,
      );
    }
  });

  it('environment: the variable, also for a nested key or under a given name', () => {
    const found = problems({
      env: {
        MXGUARD_TEST_WORKERS: 'many',
        MXGUARD_TEST_IMAP_PASSWORD: 'x',
        MXGUARD_TEST_DNS: ',',
        MXGUARD_TEST_LISTEN: 'here',
      },
    });
    for (const pattern of [
      /^MXGUARD_TEST_WORKERS: must be a whole number/,
      /^MXGUARD_TEST_IMAP_PASSWORD: /,
      /^MXGUARD_TEST_LISTEN: expected HOST:PORT/,
    ]) {
      assert.ok(
        found.some((p) => pattern.test(p)),
        `${pattern}:\n${found.join('\n')}`,
      );
    }
  });

  it('options: the option, also for an item of a list', () => {
    const found = problems({ options: { listen: '8080', workers: '65', resolver: ['1.2.3.4', ''] } });
    for (const pattern of [
      /^--listen: expected HOST:PORT/,
      /^--workers: must be a whole number/,
      /^--resolver: /,
    ]) {
      assert.ok(
        found.some((p) => pattern.test(p)),
        `${pattern}:\n${found.join('\n')}`,
      );
    }
  });

  it('reports every problem of every source at once', () => {
    const found = problems({
      configFile: file({ listen: 'x' }),
      env: { MXGUARD_TEST_WORKERS: '0' },
      options: { listen: 'y' },
    });
    assert.equal(found.length, 3, found.join('\n'));
  });
});
