// serve's monitor.* settings (src/server/config.ts): defaults, the config file, MXGUARD_* variables,
// --monitor-interval and --alert-webhook, the problems that refuse a start, and secrets kept out of logs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_MONITOR_SETTINGS } from '../../src/monitor/settings.js';
import {
  type CliSettings,
  createLogger,
  describeSettings,
  loadServeSettings,
} from '../../src/server/config.js';
import { assertProblem, configFolder, logSink, problemsOf } from '../helpers/config.js';

const folder = configFolder('monitor');
const load = (cli: CliSettings = {}, env: NodeJS.ProcessEnv = {}) =>
  loadServeSettings({ cli, env, cwd: folder.dir });

describe('monitor settings', () => {
  it('defaults: hourly, 4 at once, 1 fail / 2 warnings, 21 days, no targets', () => {
    assert.deepEqual(load().monitor, DEFAULT_MONITOR_SETTINGS);
  });

  it('reads every key from the config file', () => {
    const file = folder.write({
      monitor: {
        enabled: false,
        intervalSeconds: 600,
        concurrency: 8,
        historyDays: 30,
        failChecks: 2,
        warnChecks: 3,
        expiryDays: 30,
        tlsrptFailureRate: 0.05,
        tlsrptMinSessions: 10,
        webhooks: [{ url: 'https://hooks.example.test/a', secret: 's3cret' }],
        email: { host: 'smtp.example.test', from: 'mxguard@example.test', to: ['ops@example.test'] },
        dashboardUrl: 'https://mxguard.example.test',
      },
    });
    const m = load({ config: file }).monitor!;
    assert.equal(m.enabled, false);
    assert.equal(m.intervalSeconds, 600);
    assert.equal(m.concurrency, 8);
    assert.equal(m.historyDays, 30);
    assert.deepEqual([m.failChecks, m.warnChecks, m.expiryDays], [2, 3, 30]);
    assert.deepEqual([m.tlsrptFailureRate, m.tlsrptMinSessions], [0.05, 10]);
    assert.deepEqual(m.webhooks, [{ url: 'https://hooks.example.test/a', secret: 's3cret' }]);
    assert.deepEqual(m.email, {
      host: 'smtp.example.test',
      port: 587,
      security: 'starttls',
      from: 'mxguard@example.test',
      to: ['ops@example.test'],
    });
    assert.equal(m.dashboardUrl, 'https://mxguard.example.test');
  });

  it('--monitor-interval and --alert-webhook (repeated) override the file; variables too', () => {
    const file = folder.write({ monitor: { intervalSeconds: 600, webhooks: [{ url: 'http://a.test/' }] } });
    const m = load({
      config: file,
      monitorInterval: '120',
      alertWebhooks: 'http://127.0.0.1:9000/hook,https://b.test/x',
    }).monitor!;
    assert.equal(m.intervalSeconds, 120);
    assert.deepEqual(m.webhooks, [{ url: 'http://127.0.0.1:9000/hook' }, { url: 'https://b.test/x' }]);
    const e = load(
      {},
      {
        MXGUARD_MONITOR_INTERVAL: '300',
        MXGUARD_MONITOR_ENABLED: 'false',
        MXGUARD_ALERT_WEBHOOK: 'https://c.test/h',
        MXGUARD_DASHBOARD_URL: 'https://dash.test',
      },
    ).monitor!;
    assert.deepEqual(
      [e.intervalSeconds, e.enabled, e.webhooks, e.dashboardUrl],
      [300, false, [{ url: 'https://c.test/h' }], 'https://dash.test'],
    );
  });

  it('refuses values out of range, naming the option or key', () => {
    assertProblem(
      problemsOf(() => load({ monitorInterval: '5' })),
      /^--monitor-interval: .*60/,
    );
    assertProblem(
      problemsOf(() => load({ alertWebhooks: 'ftp://x.test/' })),
      /^--alert-webhook.*http/,
    );
    const file = folder.write({ monitor: { concurrency: 0, tlsrptFailureRate: 2, colour: 'red' } });
    const problems = problemsOf(() => load({ config: file }));
    assertProblem(problems, /monitor\.concurrency/, file);
    assertProblem(problems, /monitor\.tlsrptFailureRate/, file);
    assertProblem(problems, /unknown key "colour"/, file);
  });

  it('alert mail needs host, from and to; a user needs a password', () => {
    const file = folder.write({ monitor: { email: { host: 'smtp.example.test', user: 'u' } } });
    const problems = problemsOf(() => load({ config: file }));
    assertProblem(problems, /monitor\.email\.from: missing/);
    assertProblem(problems, /monitor\.email\.to: missing/);
    assertProblem(problems, /monitor\.email\.password: missing/);
    // The password alone (from the environment) turns nothing on.
    assert.equal(load({}, { MXGUARD_MONITOR_EMAIL_PASSWORD: 'pw' }).monitor!.email, undefined);
  });

  it('webhook secrets, webhook paths and the mail password never reach the log', () => {
    const file = folder.write({
      monitor: {
        webhooks: [
          { url: 'https://hooks.slack.test/services/T000/B000/slack-token-123', secret: 'hmac-secret-456' },
        ],
        email: {
          host: 'smtp.example.test',
          user: 'u',
          password: 'mail-secret-789',
          from: 'a@example.test',
          to: ['b@example.test'],
        },
      },
    });
    const settings = load({ config: file });
    const { stream, lines } = logSink();
    createLogger('info', stream).info({ settings: describeSettings(settings) }, 'serving');
    const text = lines.join('');
    for (const secret of ['slack-token-123', 'hmac-secret-456', 'mail-secret-789']) {
      assert.ok(!text.includes(secret), `${secret} is in the log`);
    }
    assert.match(text, /https:\/\/hooks\.slack\.test\/\[redacted\]/);
  });
});
