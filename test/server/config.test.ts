// Settings of `mxguard serve` (src/server/config.ts): defaults < config file < environment < options,
// validation errors naming the source and key, and secrets kept out of the logs.
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseHostPort } from '../../src/common/host-port.js';
import {
  type CliSettings,
  createLogger,
  describeSettings,
  loadServeSettings,
} from '../../src/server/config.js';
import { assertProblem, configFolder, logSink, problemsOf as refused } from '../helpers/config.js';

const folder = configFolder('serve');
const dir = folder.dir;
const configFile = folder.write;

function load(cli: CliSettings = {}, env: NodeJS.ProcessEnv = {}) {
  return loadServeSettings({ cli, env, cwd: '/srv/app' });
}

function problemsOf(cli: CliSettings, env: NodeJS.ProcessEnv = {}): string[] {
  return refused(() => load(cli, env));
}

describe('serve settings: defaults and precedence', () => {
  it('has working defaults without any file, variable or option', () => {
    const s = load();
    assert.equal(s.dataDir, '/srv/app/data');
    assert.deepEqual(s.listen, { host: '127.0.0.1', port: 8080 });
    assert.equal(s.tlsListen, undefined);
    assert.equal(s.smtp, undefined);
    assert.equal(s.imap, undefined);
    assert.equal(s.acme, undefined);
    assert.equal(s.workers, Math.min(2, availableParallelism()));
    assert.equal(s.logLevel, 'info');
    assert.equal(s.trustProxy, false);
    assert.equal(s.intake.acceptUnsigned, false);
    assert.ok(s.intake.maxBytes > 0 && s.intake.maxDecompressedBytes >= s.intake.maxBytes);
  });

  it('options override the environment, which overrides the file, key by key', () => {
    const file = configFile({
      listen: '127.0.0.1:1001',
      tlsListen: '127.0.0.1:1443',
      workers: 3,
      logLevel: 'warn',
    });
    const s = load(
      { config: file, listen: '127.0.0.1:3003' },
      { MXGUARD_LISTEN: '127.0.0.1:2002', MXGUARD_TLS_LISTEN: '127.0.0.1:2443', MXGUARD_LOG_LEVEL: 'debug' },
    );
    assert.deepEqual(s.listen, { host: '127.0.0.1', port: 3003 });
    assert.deepEqual(s.tlsListen, { host: '127.0.0.1', port: 2443 });
    assert.equal(s.workers, 3);
    assert.equal(s.logLevel, 'debug');
    assert.equal(s.configFile, file);
  });

  it('finds the config file through MXGUARD_CONFIG, and --config wins over it', () => {
    const a = configFile({ workers: 4 });
    const b = configFile({ workers: 5 });
    assert.equal(load({}, { MXGUARD_CONFIG: a }).workers, 4);
    assert.equal(load({ config: b }, { MXGUARD_CONFIG: a }).workers, 5);
  });

  it('resolves paths in the file against its folder, and others against the working directory', () => {
    const file = configFile({
      dataDir: 'state',
      certificates: { 'MTA-STS.Example.COM': { cert: 'c/full.pem', key: '/etc/k.pem' } },
    });
    const s = load({ config: file });
    assert.equal(s.dataDir, join(dir, 'state'));
    assert.deepEqual(s.certificates['mta-sts.example.com'], {
      cert: join(dir, 'c/full.pem'),
      key: '/etc/k.pem',
    });
    assert.equal(load({ config: file, dataDir: 'other' }).dataDir, '/srv/app/other');
    assert.equal(load({}, { MXGUARD_DATA_DIR: 'env-data' }).dataDir, '/srv/app/env-data');
  });

  it('merges nested sections: the IMAP password may come from the environment alone', () => {
    const file = configFile({ imap: { host: 'imap.example.test', user: 'reports' } });
    const s = load({ config: file }, { MXGUARD_IMAP_PASSWORD: 'hunter2-secret' });
    assert.equal(s.imap?.password, 'hunter2-secret');
    assert.equal(s.imap?.host, 'imap.example.test');
    assert.equal(s.imap?.port, 993);
    assert.equal(s.imap?.mailbox, 'INBOX');
    // A password alone does not turn polling on.
    assert.equal(load({}, { MXGUARD_IMAP_PASSWORD: 'x' }).imap, undefined);
  });

  it('takes ACME settings with defaults', () => {
    const file = configFile({ tlsListen: '0.0.0.0:443', acme: { email: 'hostmaster@example.com' } });
    const s = load({ config: file });
    assert.equal(s.acme?.email, 'hostmaster@example.com');
    assert.match(s.acme?.directoryUrl ?? '', /^https:\/\/acme-v02\.api\.letsencrypt\.org\//);
    assert.equal(s.acme?.renewDaysBefore, 30);
  });

  it('reads trustProxy from the environment as true/false or a list', () => {
    assert.equal(load({}, { MXGUARD_TRUST_PROXY: 'true' }).trustProxy, true);
    assert.deepEqual(load({}, { MXGUARD_TRUST_PROXY: '127.0.0.1, 10.0.0.0/8' }).trustProxy, [
      '127.0.0.1',
      '10.0.0.0/8',
    ]);
  });

  it('treats empty environment variables as unset', () => {
    assert.deepEqual(load({}, { MXGUARD_LISTEN: '', MXGUARD_WORKERS: ' ' }).listen, {
      host: '127.0.0.1',
      port: 8080,
    });
  });
});

describe('serve settings: errors name the source and the key', () => {
  const fileCases: Array<[string, unknown, RegExp]> = [
    ['bad listen', { listen: 'nope' }, /: listen: expected HOST:PORT/],
    ['port too large', { tlsListen: '127.0.0.1:70000' }, /: tlsListen: expected HOST:PORT/],
    ['typo in a key', { lisen: '127.0.0.1:80' }, /serve-\d+\.json: unknown key "lisen"/],
    ['typo in a nested key', { intake: { maxbytes: 5 } }, /: intake: unknown key "maxbytes"/],
    ['wrong type', { intake: { maxBytes: 'big' } }, /: intake\.maxBytes: /],
    ['zero workers', { workers: 0 }, /: workers: /],
    ['bad log level', { logLevel: 'loud' }, /: logLevel: /],
    ['bad email', { tlsListen: '127.0.0.1:1', acme: { email: 'nobody' } }, /: acme\.email: /],
    [
      'bad directory URL',
      { tlsListen: '127.0.0.1:1', acme: { email: 'a@b.example', directoryUrl: 'ftp://x' } },
      /: acme\.directoryUrl: /,
    ],
    ['bad proxy CIDR', { trustProxy: ['10.0.0.0/33'] }, /: trustProxy\.0: expected an IP address/],
    [
      'bad certificate host',
      { certificates: { 'not a host': { cert: 'a', key: 'b' } } },
      /: certificates\.not a host: /,
    ],
    [
      'certificate without key',
      { certificates: { 'mta-sts.example.com': { cert: 'a' } } },
      /: certificates\.mta-sts\.example\.com\.key: /,
    ],
    ['not an object', [1, 2], /serve-\d+\.json: /],
  ];
  for (const [name, content, pattern] of fileCases) {
    it(`config file: ${name}`, () => {
      const file = configFile(content);
      const problems = problemsOf({ config: file });
      assertProblem(problems, pattern, file);
    });
  }

  it('config file: not JSON', () => {
    const file = configFile('{ "listen": ');
    assert.match(problemsOf({ config: file })[0] ?? '', /serve-\d+\.json: not valid JSON/);
  });

  it('config file: missing', () => {
    assert.match(
      problemsOf({ config: join(dir, 'absent.json') })[0] ?? '',
      /absent\.json: cannot read: ENOENT/,
    );
  });

  it('IMAP without user and password names both keys', () => {
    const problems = problemsOf({ config: configFile({ imap: { host: 'imap.example.test' } }) });
    assert.ok(problems.some((p) => p.startsWith('imap.user: missing')));
    assert.ok(
      problems.some((p) => p.startsWith('imap.password: missing') && p.includes('MXGUARD_IMAP_PASSWORD')),
    );
  });

  it('ACME without the HTTPS listener or the email is refused', () => {
    const problems = problemsOf({ config: configFile({ acme: { renewDaysBefore: 20 } }) });
    assert.ok(problems.some((p) => p.startsWith('acme.email: missing')));
    assert.ok(problems.some((p) => p.startsWith('acme: ') && p.includes('tlsListen')));
  });

  const envCases: Array<[NodeJS.ProcessEnv, RegExp]> = [
    [{ MXGUARD_LISTEN: 'localhost' }, /^MXGUARD_LISTEN: expected HOST:PORT/],
    [{ MXGUARD_WORKERS: 'many' }, /^MXGUARD_WORKERS: /],
    [{ MXGUARD_LOG_LEVEL: 'chatty' }, /^MXGUARD_LOG_LEVEL: /],
    [{ MXGUARD_TRUST_PROXY: 'proxy.example' }, /^MXGUARD_TRUST_PROXY: expected an IP address/],
    [{ MXGUARD_ACME_EMAIL: 'x' }, /^MXGUARD_ACME_EMAIL: /],
    [{ MXGUARD_ADMIN_PASSWORD: 'short' }, /^MXGUARD_ADMIN_PASSWORD: must have at least 10 characters/],
  ];
  for (const [env, pattern] of envCases) {
    it(`environment: ${Object.keys(env).join(', ')}`, () => {
      const problems = problemsOf({}, env);
      assertProblem(problems, pattern);
    });
  }

  const cliCases: Array<[CliSettings, RegExp]> = [
    [{ listen: '8080' }, /^--listen: expected HOST:PORT/],
    [{ tlsListen: '[::1]' }, /^--tls-listen: expected HOST:PORT/],
    [{ workers: '0' }, /^--workers: /],
    [{ timeout: 'soon' }, /^--timeout: /],
  ];
  for (const [cli, pattern] of cliCases) {
    it(`option: ${JSON.stringify(cli)}`, () => {
      const problems = problemsOf(cli);
      assertProblem(problems, pattern);
    });
  }

  it('reports every problem at once, from every source', () => {
    const problems = problemsOf(
      { config: configFile({ listen: 'x', workers: -1 }), smtpListen: 'y' },
      { MXGUARD_TLS_LISTEN: 'z' },
    );
    assert.equal(problems.length, 4, problems.join('\n'));
  });
});

describe('parseHostPort', () => {
  const good: Array<[string, string, number]> = [
    ['127.0.0.1:8080', '127.0.0.1', 8080],
    ['0.0.0.0:443', '0.0.0.0', 443],
    ['[::1]:8443', '::1', 8443],
    ['localhost:0', 'localhost', 0],
    ['mta-sts.example.com:65535', 'mta-sts.example.com', 65535],
  ];
  for (const [text, host, port] of good) {
    it(`accepts ${text}`, () => assert.deepEqual(parseHostPort(text), { host, port }));
  }
  for (const text of [
    '8080',
    '127.0.0.1',
    '127.0.0.1:',
    ':80',
    '::1:80',
    '[nothost]:80',
    '127.0.0.1:65536',
    'a b:1',
  ]) {
    it(`refuses ${JSON.stringify(text)}`, () => assert.equal(parseHostPort(text), undefined));
  }
});

describe('secrets stay out of the logs', () => {
  it('redacts passwords, authorization and cookies at any depth the server logs them', () => {
    const { stream: sink, lines } = logSink();
    const logger = createLogger('info', sink);
    const file = configFile({
      adminPassword: 'admin-secret-123',
      imap: { host: 'imap.example.test', user: 'u', password: 'imap-secret-456' },
    });
    const settings = load({ config: file });
    logger.info({ settings }, 'raw settings object');
    logger.info({ settings: describeSettings(settings) }, 'described settings');
    logger.info({ password: 'top-secret-789' }, 'top level');
    logger.info(
      {
        req: {
          headers: { authorization: 'Bearer token-secret-000', cookie: 'mxguard_session=cookie-secret' },
        },
      },
      'request',
    );
    logger.child({ component: 'imap' }).info({ imap: { password: 'child-secret-111' } }, 'child');
    const text = lines.join('');
    for (const secret of [
      'admin-secret-123',
      'imap-secret-456',
      'top-secret-789',
      'token-secret-000',
      'cookie-secret',
      'child-secret-111',
    ]) {
      assert.ok(!text.includes(secret), `${secret} reached the log:\n${text}`);
    }
    assert.ok(text.includes('[redacted]'));
    // What is not secret is still there.
    assert.ok(text.includes('imap.example.test'));
  });
});

describe('serve settings: admin host names and metrics', () => {
  it('has no extra admin hosts, no metrics listener and no domain labels by default', () => {
    const s = load();
    assert.deepEqual(s.adminHosts, []);
    assert.equal(s.metricsListen, undefined);
    assert.deepEqual(s.metrics, { domainLabels: false, allowNonLoopback: false });
  });

  it('reads adminHosts from the file, MXGUARD_ADMIN_HOSTS and --admin-host, normalized', () => {
    const file = configFile({
      adminHosts: ['Admin.Example.com', '192.0.2.1', '[2001:DB8::1]', '2001:db8::2'],
    });
    assert.deepEqual(load({ config: file }).adminHosts, [
      'admin.example.com',
      '192.0.2.1',
      '[2001:db8::1]',
      '[2001:db8::2]',
    ]);
    assert.deepEqual(load({ config: file }, { MXGUARD_ADMIN_HOSTS: 'one.example, two.example' }).adminHosts, [
      'one.example',
      'two.example',
    ]);
    assert.deepEqual(load({ config: file, adminHosts: 'box.lan,Other.LAN' }).adminHosts, [
      'box.lan',
      'other.lan',
    ]);
  });

  it('refuses admin hosts that are not host names or addresses, and policy host names', () => {
    for (const [host, pattern] of [
      ['evil.example:8080', /adminHosts\.0: expected a host name or an IP address/],
      ['a b', /adminHosts\.0: expected a host name or an IP address/],
      ['*.example.com', /adminHosts\.0: expected a host name or an IP address/],
      ['mta-sts.example.com', /adminHosts\.0: .*mta-sts\./],
    ] as const) {
      const problems = problemsOf({ config: configFile({ adminHosts: [host] }) });
      assert.ok(
        problems.some((p) => pattern.test(p)),
        `${host}: ${problems.join('\n')}`,
      );
    }
    assert.ok(problemsOf({ adminHosts: 'ok.example,bad host' }).some((p) => p.startsWith('--admin-host: ')));
    assert.ok(
      problemsOf({}, { MXGUARD_ADMIN_HOSTS: 'x:1' }).some((p) => p.startsWith('MXGUARD_ADMIN_HOSTS: ')),
    );
  });

  it('reads metricsListen from the file, MXGUARD_METRICS_LISTEN and --metrics-listen', () => {
    assert.deepEqual(load({ config: configFile({ metricsListen: '127.0.0.1:9464' }) }).metricsListen, {
      host: '127.0.0.1',
      port: 9464,
    });
    assert.deepEqual(load({}, { MXGUARD_METRICS_LISTEN: '[::1]:9464' }).metricsListen, {
      host: '::1',
      port: 9464,
    });
    assert.deepEqual(load({ metricsListen: 'localhost:9000' }).metricsListen, {
      host: 'localhost',
      port: 9000,
    });
    assert.deepEqual(load({ metricsListen: '127.8.9.10:9000' }).metricsListen, {
      host: '127.8.9.10',
      port: 9000,
    });
  });

  it('refuses a metricsListen that is not loopback unless metrics.allowNonLoopback is set', () => {
    for (const address of ['0.0.0.0:9464', '192.0.2.7:9464', '[::]:9464', 'metrics.example:9464']) {
      const problems = problemsOf({ metricsListen: address });
      assert.ok(
        problems.some((p) => /^metricsListen: .*not a loopback address.*metrics\.allowNonLoopback/.test(p)),
        `${address}: ${problems.join('\n')}`,
      );
    }
    const open = load({
      config: configFile({ metricsListen: '0.0.0.0:9464', metrics: { allowNonLoopback: true } }),
    });
    assert.deepEqual(open.metricsListen, { host: '0.0.0.0', port: 9464 });
  });

  it('takes metrics.domainLabels from the file, and refuses unknown metrics keys', () => {
    assert.equal(
      load({ config: configFile({ metrics: { domainLabels: true } }) }).metrics?.domainLabels,
      true,
    );
    const problems = problemsOf({ config: configFile({ metrics: { domainLabel: true } }) });
    assert.ok(
      problems.some((p) => /: metrics: unknown key "domainLabel"/.test(p)),
      problems.join('\n'),
    );
  });
});
