// Settings of `mxguard policyd` (src/policyd/config.ts): serve's dialect (camelCase keys in the file,
// MXGUARD_POLICYD_* variables, options), defaults, errors naming the source, and the kebab-case keys of
// earlier releases read with a deprecation warning per key.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/config/log.js';
import { DEPRECATED_KEYS, loadPolicydSettings, type PolicydCliSettings } from '../../src/policyd/config.js';
import { fromPino } from '../../src/policyd/log.js';
import { assertProblem, configFolder, logSink, problemsOf as refused } from '../helpers/config.js';

const folder = configFolder('policyd');
const dir = folder.dir;
const configFile = folder.write;

function load(cli: PolicydCliSettings = {}, env: NodeJS.ProcessEnv = {}) {
  return loadPolicydSettings({ cli, env, cwd: '/srv/app' });
}

function problemsOf(cli: PolicydCliSettings, env: NodeJS.ProcessEnv = {}): string[] {
  return refused(() => load(cli, env));
}

/** Every key in the new dialect, and the same in the old one. */
const NEW_FILE = {
  listen: '127.0.0.1:18461',
  socket: 'policyd.sock',
  metricsListen: '127.0.0.1:19461',
  dataDir: 'state',
  resolver: ['127.0.0.1'],
  caFile: ['ca.pem'],
  allowPrivate: true,
  timeout: 7,
  httpsPort: 8443,
  daneMode: 'dane',
  testingMode: 'enforce',
  idCheckInterval: 61,
  answerTimeout: 11,
  maxConnections: 2001,
  idleTimeout: 301,
  storeSync: 6,
};
const OLD_FILE = {
  listen: '127.0.0.1:18461',
  socket: 'policyd.sock',
  metrics: '127.0.0.1:19461',
  'data-dir': 'state',
  resolver: '127.0.0.1',
  'ca-file': 'ca.pem',
  'allow-private': true,
  timeout: '7',
  'https-port': 8443,
  'dane-mode': 'dane',
  'testing-mode': 'enforce',
  'id-check-interval': '61',
  'answer-timeout': 11,
  'max-connections': '2001',
  'idle-timeout': 301,
  'store-sync': '6',
};

describe('policyd settings: defaults and precedence', () => {
  it('has the documented defaults', () => {
    const s = load();
    assert.deepEqual(s.listen, { host: '127.0.0.1', port: 8461 });
    assert.equal(s.socket, undefined);
    assert.equal(s.dataDir, '/srv/app/data');
    assert.deepEqual(s.network, {
      resolver: [],
      caFile: [],
      allowPrivate: false,
      timeoutSeconds: 30,
      httpsPort: 443,
    });
    assert.equal(s.daneMode, 'dane-only');
    assert.equal(s.testingMode, 'ignore');
    assert.equal(s.idCheckIntervalSeconds, 60);
    assert.equal(s.answerTimeoutSeconds, 10);
    assert.equal(s.maxConnections, 2000);
    assert.equal(s.idleTimeoutSeconds, 300);
    assert.equal(s.storeSyncSeconds, 5);
    assert.equal(s.logLevel, 'info');
    assert.deepEqual(s.warnings, []);
  });

  it('listens on TCP by default only when no socket is set', () => {
    assert.equal(load({ socket: '/run/policyd.sock' }).listen, undefined);
    assert.deepEqual(load({ socket: '/run/p.sock', listen: '[::1]:8461' }).listen, {
      host: '::1',
      port: 8461,
    });
  });

  it('reads camelCase keys from the file, paths relative to it, without warnings', () => {
    const file = configFile(NEW_FILE);
    const s = load({ config: file });
    assert.deepEqual(s.warnings, []);
    assert.equal(s.configFile, file);
    assert.deepEqual(s.listen, { host: '127.0.0.1', port: 18461 });
    assert.equal(s.socket, join(dir, 'policyd.sock'));
    assert.deepEqual(s.metricsListen, { host: '127.0.0.1', port: 19461 });
    assert.equal(s.dataDir, join(dir, 'state'));
    assert.deepEqual(s.network, {
      resolver: ['127.0.0.1'],
      caFile: [join(dir, 'ca.pem')],
      allowPrivate: true,
      timeoutSeconds: 7,
      httpsPort: 8443,
    });
    assert.equal(s.daneMode, 'dane');
    assert.equal(s.testingMode, 'enforce');
    assert.equal(s.idCheckIntervalSeconds, 61);
    assert.equal(s.answerTimeoutSeconds, 11);
    assert.equal(s.maxConnections, 2001);
    assert.equal(s.idleTimeoutSeconds, 301);
    assert.equal(s.storeSyncSeconds, 6);
  });

  it('reads the kebab-case keys of earlier releases to the same settings, warning once per old key', () => {
    const file = configFile(OLD_FILE);
    const { warnings, configFile: _a, ...old } = load({ config: file });
    const { warnings: none, configFile: _b, ...current } = load({ config: configFile(NEW_FILE) });
    assert.deepEqual(old, current);
    assert.deepEqual(none, []);
    for (const [oldKey, newKey] of Object.entries(DEPRECATED_KEYS)) {
      if (oldKey === newKey) continue;
      assert.ok(
        warnings.some(
          (w) =>
            w ===
            `${file}: "${oldKey}" is deprecated: use "${newKey}" (the old keys are read until the next release)`,
        ),
        `${oldKey}:\n${warnings.join('\n')}`,
      );
    }
    assert.ok(
      warnings.some((w) => w === `${file}: resolver: "127.0.0.1" as text is deprecated: write ["127.0.0.1"]`),
    );
    assert.ok(warnings.some((w) => w === `${file}: timeout: "7" as text is deprecated: write 7`));
    // One line per old key or text value: data-dir, ..., metrics, and resolver, timeout.
    assert.equal(warnings.length, Object.keys(DEPRECATED_KEYS).length, warnings.join('\n'));
  });

  it('file < MXGUARD_POLICYD_* < options, key by key', () => {
    const file = configFile({ listen: '127.0.0.1:1', daneMode: 'dane', storeSync: 9, dataDir: 'file-data' });
    const s = load(
      { config: file, listen: '127.0.0.1:3' },
      {
        MXGUARD_POLICYD_LISTEN: '127.0.0.1:2',
        MXGUARD_POLICYD_DANE_MODE: 'dane-only',
        MXGUARD_POLICYD_RESOLVER: '127.0.0.53, ::1',
        MXGUARD_POLICYD_ALLOW_PRIVATE: 'true',
        MXGUARD_POLICYD_LOG_LEVEL: 'warn',
      },
    );
    assert.deepEqual(s.listen, { host: '127.0.0.1', port: 3 });
    assert.equal(s.daneMode, 'dane-only');
    assert.equal(s.storeSyncSeconds, 9);
    assert.equal(s.dataDir, join(dir, 'file-data'));
    assert.deepEqual(s.network.resolver, ['127.0.0.53', '::1']);
    assert.equal(s.network.allowPrivate, true);
    assert.equal(s.logLevel, 'warn');
  });

  it('finds the file through MXGUARD_POLICYD_CONFIG; --config wins', () => {
    const a = configFile({ storeSync: 4 });
    const b = configFile({ storeSync: 3 });
    assert.equal(load({}, { MXGUARD_POLICYD_CONFIG: a }).storeSyncSeconds, 4);
    assert.equal(load({ config: b }, { MXGUARD_POLICYD_CONFIG: a }).storeSyncSeconds, 3);
  });

  it("does not read serve's variables", () => {
    assert.equal(
      load({}, { MXGUARD_DATA_DIR: '/var/lib/serve', MXGUARD_LISTEN: '127.0.0.1:1' }).dataDir,
      '/srv/app/data',
    );
  });
});

describe('policyd settings: errors name the file and key, the variable or the option', () => {
  const fileCases: Array<[string, unknown, RegExp]> = [
    ['unknown key', { listen: '127.0.0.1:0', colour: 'blue' }, /: unknown key "colour"$/],
    ['bad listen', { listen: 'nowhere' }, /: listen: expected HOST:PORT or \[IPv6\]:PORT, got "nowhere"$/],
    ['bad dane mode', { daneMode: 'maybe' }, /: daneMode: expected dane or dane-only$/],
    [
      'number as text in a new key',
      { storeSync: '5' },
      /: storeSync: must be a whole number from 1 to 3600$/,
    ],
    ['out of range', { answerTimeout: 91 }, /: answerTimeout: must be a whole number from 1 to 90$/],
    ['bad old key value', { 'testing-mode': 'strict' }, /: testingMode: expected ignore or enforce$/],
    ['old and new key together', { 'data-dir': 'a', dataDir: 'b' }, /: "data-dir" and "dataDir" both given/],
  ];
  for (const [name, content, pattern] of fileCases) {
    it(`config file: ${name}`, () => {
      const file = configFile(content);
      const problems = problemsOf({ config: file });
      assertProblem(problems, pattern, `${file}: `);
    });
  }

  it('config file: not JSON', () => {
    assert.match(
      problemsOf({ config: configFile('{"listen": ') })[0] ?? '',
      /policyd-\d+\.json: not valid JSON/,
    );
  });

  const envCases: Array<[NodeJS.ProcessEnv, RegExp]> = [
    [{ MXGUARD_POLICYD_LISTEN: 'localhost' }, /^MXGUARD_POLICYD_LISTEN: expected HOST:PORT/],
    [{ MXGUARD_POLICYD_STORE_SYNC: 'often' }, /^MXGUARD_POLICYD_STORE_SYNC: must be a whole number/],
    [{ MXGUARD_POLICYD_ALLOW_PRIVATE: 'yes' }, /^MXGUARD_POLICYD_ALLOW_PRIVATE: /],
    [{ MXGUARD_POLICYD_TESTING_MODE: 'strict' }, /^MXGUARD_POLICYD_TESTING_MODE: expected ignore or enforce/],
    [{ MXGUARD_POLICYD_LOG_LEVEL: 'loud' }, /^MXGUARD_POLICYD_LOG_LEVEL: expected one of fatal/],
  ];
  for (const [env, pattern] of envCases) {
    it(`environment: ${Object.keys(env).join(', ')}`, () => {
      const problems = problemsOf({}, env);
      assertProblem(problems, pattern);
    });
  }

  const cliCases: Array<[PolicydCliSettings, RegExp]> = [
    [
      { listen: '127.0.0.1:99999' },
      /^--listen: expected HOST:PORT or \[IPv6\]:PORT, got "127\.0\.0\.1:99999"$/,
    ],
    [{ metricsListen: '9461' }, /^--metrics: expected HOST:PORT/],
    [{ daneMode: 'maybe' }, /^--dane-mode: expected dane or dane-only$/],
    [{ idleTimeout: '0' }, /^--idle-timeout: must be a whole number from 1 to 86400$/],
    [{ maxConnections: 'lots' }, /^--max-connections: must be a whole number/],
    [{ resolver: [''] }, /^--resolver: /],
  ];
  for (const [cli, pattern] of cliCases) {
    it(`option: ${JSON.stringify(cli)}`, () => {
      const problems = problemsOf(cli);
      assertProblem(problems, pattern);
    });
  }
});

describe('policyd log lines: the shared pino logger behind the engine’s Logger function', () => {
  it('writes one JSON object per call with the level, the message and the fields; secrets redacted', () => {
    const { stream: sink, lines } = logSink();
    const log = fromPino(createLogger('warn', sink));
    log('info', 'below the level');
    log('warn', 'policy fetch failed', { domain: 'example.com', password: 'hunter2-secret' });
    log('error', 'store failed');
    assert.equal(lines.length, 2, lines.join(''));
    const warn = JSON.parse(lines[0]!);
    assert.equal(warn.level, 40);
    assert.equal(warn.msg, 'policy fetch failed');
    assert.equal(warn.domain, 'example.com');
    assert.equal(warn.password, '[redacted]');
    assert.equal(typeof warn.time, 'number');
    assert.equal(JSON.parse(lines[1]!).level, 50);
  });
});
