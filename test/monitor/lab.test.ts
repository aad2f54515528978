// The monitor end to end in the lab (issue 12 "Proof"): real lab DNS (DNSSEC-signed zones, TLSA), real
// SMTP servers with STARTTLS and an HTTPS policy host on loopback, the SQLite store, the scheduler on a
// clock driven by hand, and the deliverer sending to a real webhook receiver and a real SMTP submission
// server. Walks through:
// - a certificate renewal without a TLSA update: the SMTP server's key changes, the next scheduled check
//   opens DANE_TLSA_MISMATCH, webhook and e-mail carry the new 3 1 1 record; the TLSA record is corrected
//   in the lab DNS, the next check resolves it and a second webhook says so;
// - an MX added to DNS but not to the policy (MTASTS_MX_NOT_COVERED, fail: opens at once), then the policy
//   corrected under the same id (MTASTS_ID_UNCHANGED) and finally a new id;
// - a certificate expiring within monitor.expiryDays (21) but after the check's own 14 days: a warning,
//   so it opens on the second consecutive check only (flap damping).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { simpleParser } from 'mailparser';
import { formatTlsa, generateTlsa, tlsaOwner } from '../../src/dane/tlsa.js';
import { DnsClient } from '../../src/dns/client.js';
import { Deliverer } from '../../src/monitor/notify/deliverer.js';
import type { WebhookBody } from '../../src/monitor/notify/webhook.js';
import { createMonitor, type MonitorService } from '../../src/monitor/service.js';
import { DEFAULT_MONITOR_SETTINGS, type MonitorSettings } from '../../src/monitor/settings.js';
import type { CheckRun } from '../../src/store/monitor-types.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { type StandardChain, standardChain, type TestCert, TestPki } from '../helpers/pki.js';
import { serverTls } from '../helpers/server-tls.js';
import {
  SUBMISSION_PASSWORD,
  SUBMISSION_USER,
  type SubmissionServer,
  startSubmissionServer,
} from '../helpers/submission.js';
import { type LabDnsServer, type LabRecord, type LabZone, startDnsServer } from '../lab/dns-server.js';
import { labCert, type PolicyHost, type SiteBehaviour, startPolicyHost } from '../lab/https-server.js';
import { type LabSmtpServer, startSmtpServer } from '../lab/smtp-server.js';

const ROOT_KEY = { flags: 257, algorithm: 13, key: Buffer.alloc(64, 7) };
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const INTERVAL_SECONDS = 3600;

const policy = (mx: string[], mode = 'enforce') =>
  `version: STSv1\nmode: ${mode}\n${mx.map((m) => `mx: ${m}\n`).join('')}max_age: 604800\n`;

function tlsaRecord(host: string, cert: TestCert): LabRecord {
  const r = generateTlsa(cert.x509, 3, 1, 1);
  return {
    name: `_25._tcp.${host}`,
    type: 'TLSA',
    data: { usage: r.usage, selector: r.selector, matchingType: r.matchingType, certificate: r.data },
  };
}

let pki: TestPki;
let chain: StandardChain;
/** The renewed certificate of mx.dane.test: a new key from the same CA. */
let renewed: TestCert;
/** mx.expiring.test's certificate: 18 days left. */
let expiring: TestCert;
let dns: LabDnsServer;
let zones: Record<string, LabZone>;
let https: PolicyHost;
let sites: Record<string, SiteBehaviour & { kind: 'serve' }>;
/** One SMTP server per loopback address, all on one port: 127.0.0.1 dane and newmx, 127.0.0.2 expiring. */
let smtp: LabSmtpServer;
let smtpExpiring: LabSmtpServer;
let submission: SubmissionServer;
let hookServer: http.Server;
const hooks: WebhookBody[] = [];
let dir: string;
let store: Store;
let clock: ManualClock;
let monitor: MonitorService;
let deliverer: Deliverer;
const runs: CheckRun[] = [];

const smtpCert = (leaf: TestCert) => labCert(leaf.key, [leaf, chain.intermediate]);

before(async () => {
  pki = TestPki.create('mxguard-monitor-lab-');
  const mxHosts = ['mx.dane.test', 'mx.newmx.test', 'mx2.newmx.test', 'mx.expiring.test'];
  const policyHosts = ['mta-sts.dane.test', 'mta-sts.newmx.test', 'mta-sts.expiring.test'];
  chain = standardChain(pki, { host: 'mx.dane.test', sans: [...mxHosts, ...policyHosts] });
  renewed = pki.issue('renewed', { issuer: chain.intermediate, sans: mxHosts });
  expiring = pki.issue('expiring', {
    issuer: chain.intermediate,
    sans: ['mx.expiring.test'],
    notBefore: new Date(Date.now() - 60 * DAY),
    notAfter: new Date(Date.now() + 18 * DAY),
  });

  smtp = await startSmtpServer({ host: '127.0.0.1', cert: smtpCert(chain.leaf) });
  smtpExpiring = await startSmtpServer({ host: '127.0.0.2', port: smtp.port, cert: smtpCert(expiring) });
  sites = {
    'mta-sts.dane.test': { kind: 'serve', body: policy(['mx.dane.test']) },
    'mta-sts.newmx.test': { kind: 'serve', body: policy(['mx.newmx.test']) },
    'mta-sts.expiring.test': { kind: 'serve', body: policy(['mx.expiring.test']) },
  };
  https = await startPolicyHost({ sites, defaultCert: smtpCert(chain.leaf) });

  const mailZone = (domain: string, address: string, extra: LabRecord[] = []): LabZone => ({
    origin: domain,
    secure: true,
    records: [
      { name: domain, type: 'MX', data: { preference: 10, exchange: `mx.${domain}` } },
      { name: `mx.${domain}`, type: 'A', data: address },
      { name: `_mta-sts.${domain}`, type: 'TXT', data: 'v=STSv1; id=20261201000000' },
      { name: `mta-sts.${domain}`, type: 'A', data: '127.0.0.1' },
      ...extra,
    ],
  });
  zones = {
    'dane.test': mailZone('dane.test', '127.0.0.1', [tlsaRecord('mx.dane.test', chain.leaf)]),
    'newmx.test': mailZone('newmx.test', '127.0.0.1'),
    'expiring.test': mailZone('expiring.test', '127.0.0.2'),
  };
  dns = await startDnsServer([
    { origin: '.', secure: true, records: [{ name: '.', type: 'DNSKEY', data: ROOT_KEY }] },
    ...Object.values(zones),
  ]);

  const tls = serverTls(pki);
  submission = await startSubmissionServer(tls);
  hookServer = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hooks.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookBody);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', resolve));
  const hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/alerts`;

  dir = mkdtempSync(join(tmpdir(), 'mxguard-monitor-lab-'));
  store = await openSqliteStore(dir);
  for (const domain of Object.keys(zones)) {
    await store.addDomain(
      domain,
      {
        mode: 'testing',
        mx: [`mx.${domain}`],
        maxAge: 604800,
        rua: ['mailto:tlsrpt@example.test'],
        watchOnly: true,
      },
      new Date(),
    );
  }
  const settings: MonitorSettings = {
    ...DEFAULT_MONITOR_SETTINGS,
    intervalSeconds: INTERVAL_SECONDS,
    webhooks: [{ url: hookUrl }],
    email: {
      host: 'localhost',
      port: submission.port,
      security: 'starttls',
      user: SUBMISSION_USER,
      password: SUBMISSION_PASSWORD,
      from: 'mxguard@example.test',
      to: ['postmaster@example.test'],
    },
    dashboardUrl: 'https://mxguard.example.test/',
  };
  clock = new ManualClock(Date.now());
  const ca = [chain.root.pem, tls.ca];
  deliverer = new Deliverer({ store, settings, ca, clock: () => clock.date(), pollMs: 3_600_000 });
  monitor = createMonitor({
    store,
    settings,
    network: {
      resolver: new DnsClient({ servers: [{ host: dns.host, port: dns.port }], timeoutMs: 2000, tries: 1 }),
      ca,
      allowPrivate: true,
      timeoutMs: 5000,
      smtpPort: smtp.port,
      httpsPort: https.port,
    },
    now: () => clock.date(),
    clock,
    random: () => 0,
    logger: { info() {}, warn() {}, error() {} },
  });
  monitor.startSchedule({ recorded: (run) => runs.push(run) });
});

after(async () => {
  await monitor?.stop();
  await deliverer?.stop();
  await store?.close();
  await Promise.all([
    dns?.stop(),
    https?.stop(),
    smtp?.stop(),
    smtpExpiring?.stop(),
    submission?.close(),
    new Promise((resolve) => hookServer?.close(resolve)),
  ]);
  pki?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * The runs stored since `from`, once there are `count` of them: the checks talk to real servers, so this
 * waits on them (the manual clock does not move meanwhile); a check that never ends fails the test.
 */
async function runsSince(from: number, count: number): Promise<CheckRun[]> {
  for (let i = 0; i < 3000 && runs.length < from + count; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(runs.length, from + count, 'the checks did not finish');
  return runs.slice(from);
}

/** The next scheduled round: the clock moves one interval on, every domain is checked once. */
async function scheduledRound(): Promise<CheckRun[]> {
  const from = runs.length;
  await clock.advance(INTERVAL_SECONDS * 1000);
  const round = await runsSince(from, 3);
  await drain();
  return round;
}

/**
 * Sends every pending notification: the deliverer sends one at a time per target, the next one when the
 * one before is settled, so this waits on the real servers until none is left.
 */
async function drain(): Promise<void> {
  for (let i = 0; i < 500; i++) {
    await deliverer.deliverDue();
    if ((await store.listDeliveries({ state: 'pending' })).total === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const pending = (await store.listDeliveries({ state: 'pending' })).items;
  assert.fail(
    `notifications still pending: ${JSON.stringify(pending.map((d) => [d.channel, d.attempts, d.lastError, d.nextAttemptAt]))}`,
  );
}

const openAlerts = async (domain: string) =>
  (await store.openAlerts(domain)).map((a) => `${a.code} ${a.subject}`).sort();

const hooksFor = (domain: string) => hooks.filter((h) => h.domain === domain);

describe('the monitor in the lab', () => {
  it('checks every watched domain on start; nothing is wrong yet', async () => {
    await clock.advance(0);
    const first = await runsSince(0, 3);
    assert.deepEqual(
      first.map((r) => r.trigger),
      ['start', 'start', 'start'],
    );
    assert.deepEqual(first.map((r) => r.domain).sort(), ['dane.test', 'expiring.test', 'newmx.test']);
    const dane = first.find((r) => r.domain === 'dane.test')!;
    assert.ok(
      dane.findings.some((f) => f.code === 'DANE_TLSA_MATCH'),
      JSON.stringify(dane.findings.filter((f) => f.status !== 'pass')),
    );
    // A warning seen once does not open an alert (warnChecks 2); the TLSA record tied to one key is no
    // alert while no certificate change is near.
    assert.ok(
      first.find((r) => r.domain === 'expiring.test')!.findings.some((f) => f.code === 'TLS_CERT_EXPIRING'),
    );
    assert.deepEqual(await openAlerts('dane.test'), []);
    assert.deepEqual(await openAlerts('expiring.test'), []);
    assert.deepEqual(await openAlerts('newmx.test'), []);
    await drain();
    assert.deepEqual(hooks, []);
  });

  it('a renewed key without a TLSA update opens DANE_TLSA_MISMATCH with the new 3 1 1 record, by webhook and mail', async () => {
    await smtp.stop();
    smtp = await startSmtpServer({ host: '127.0.0.1', port: smtp.port, cert: smtpCert(renewed) });
    // Meanwhile an MX is added to DNS but not to the policy.
    zones['newmx.test']!.records.push(
      { name: 'newmx.test', type: 'MX', data: { preference: 20, exchange: 'mx2.newmx.test' } },
      { name: 'mx2.newmx.test', type: 'A', data: '127.0.0.1' },
    );
    const round = await scheduledRound();
    assert.deepEqual(
      round.map((r) => r.trigger),
      ['schedule', 'schedule', 'schedule'],
    );

    const fix = formatTlsa(generateTlsa(renewed.x509, 3, 1, 1), tlsaOwner('mx.dane.test'));
    assert.deepEqual(await openAlerts('dane.test'), ['DANE_TLSA_MISMATCH mx.dane.test/127.0.0.1']);
    const [opened, ...more] = hooksFor('dane.test');
    assert.deepEqual(more, [], 'one notification per change');
    assert.equal(opened?.event, 'alert.opened');
    assert.equal(opened?.code, 'DANE_TLSA_MISMATCH');
    assert.equal(opened?.severity, 'fail');
    assert.equal(opened?.host, 'mx.dane.test/127.0.0.1');
    assert.equal(opened?.fix, fix);
    assert.equal(opened?.dashboardUrl, 'https://mxguard.example.test/#/domains/dane.test');

    const mails = await Promise.all(submission.messages.map((m) => simpleParser(m.raw)));
    const mail = mails.find((m) => m.text?.includes('DANE_TLSA_MISMATCH'));
    assert.ok(mail, `no alert mail about the mismatch: ${mails.map((m) => m.subject).join(' | ')}`);
    assert.ok(mail.text?.includes(fix), mail.text);

    // The MX added to DNS only: a fail under enforce, open at once.
    assert.deepEqual(await openAlerts('newmx.test'), ['MTASTS_MX_NOT_COVERED mx2.newmx.test']);
    const uncovered = hooksFor('newmx.test');
    assert.equal(uncovered.length, 1);
    assert.match(uncovered[0]!.fix ?? '', /mx: mx2\.newmx\.test/);

    // The certificate 18 days from expiry: the second consecutive warning opens it.
    assert.deepEqual(await openAlerts('expiring.test'), ['TLS_CERT_EXPIRING mx.expiring.test/127.0.0.2']);
    assert.equal(hooksFor('expiring.test')[0]?.severity, 'warn');
  });

  it('a check that still sees the problem sends nothing again', async () => {
    const before = hooks.length;
    const mails = submission.messages.length;
    await scheduledRound();
    assert.equal(hooks.length, before);
    assert.equal(submission.messages.length, mails);
    assert.deepEqual(await openAlerts('dane.test'), ['DANE_TLSA_MISMATCH mx.dane.test/127.0.0.1']);
  });

  it('the TLSA record corrected in DNS: the next check resolves the alert and a second webhook says so', async () => {
    const records = zones['dane.test']!.records;
    records.splice(
      records.findIndex((r) => r.type === 'TLSA'),
      1,
      tlsaRecord('mx.dane.test', renewed),
    );
    // The policy gets the new MX, but the id stays: senders keep the old policy.
    sites['mta-sts.newmx.test']!.body = policy(['mx.newmx.test', 'mx2.newmx.test']);
    await scheduledRound();

    assert.deepEqual(await openAlerts('dane.test'), []);
    const dane = hooksFor('dane.test');
    assert.deepEqual(
      dane.map((h) => h.event),
      ['alert.opened', 'alert.resolved'],
    );
    assert.equal(dane[1]!.code, 'DANE_TLSA_MISMATCH');
    assert.ok(dane[1]!.resolvedAt !== undefined && dane[1]!.openedAt === dane[0]!.openedAt);
    const resolved = (await store.listAlerts({ domain: 'dane.test', state: 'resolved' })).items;
    assert.equal(resolved.length, 1);

    // newmx: covered now, but the body changed under the published id (a warning: not open yet).
    const last = runs.filter((r) => r.domain === 'newmx.test').at(-1)!;
    assert.ok(last.findings.some((f) => f.code === 'MTASTS_ID_UNCHANGED'));
    assert.deepEqual(await openAlerts('newmx.test'), []);
    assert.deepEqual(
      hooksFor('newmx.test').map((h) => `${h.event} ${h.code}`),
      ['alert.opened MTASTS_MX_NOT_COVERED', 'alert.resolved MTASTS_MX_NOT_COVERED'],
    );
  });

  it('a changed policy under the same id stays an alert until the id changes', async () => {
    await scheduledRound();
    assert.deepEqual(await openAlerts('newmx.test'), ['MTASTS_ID_UNCHANGED ']);
    const txt = zones['newmx.test']!.records.find((r) => r.name === '_mta-sts.newmx.test')!;
    (txt as { data: string }).data = 'v=STSv1; id=20261207000000';
    await scheduledRound();
    assert.deepEqual(await openAlerts('newmx.test'), []);
    assert.deepEqual(
      hooksFor('newmx.test')
        .slice(2)
        .map((h) => `${h.event} ${h.code}`),
      ['alert.opened MTASTS_ID_UNCHANGED', 'alert.resolved MTASTS_ID_UNCHANGED'],
    );
  });

  it('checkNow runs a check at once and returns the stored run', async () => {
    const run = await monitor.checkNow('Dane.Test');
    assert.equal(run.trigger, 'manual');
    assert.equal(run.domain, 'dane.test');
    assert.deepEqual(await store.getCheckRun(run.id), run);
    const history = await store.listCheckRuns('dane.test');
    assert.equal(history.total, runs.filter((r) => r.domain === 'dane.test').length);
  });
});
