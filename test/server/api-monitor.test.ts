// The monitoring part of the API (src/server/api/monitor-routes.ts) on the real SQLite store: alerts
// filtered by domain and state, a domain's history of checks, one run with its findings, the diff of two
// runs, a check on demand, the notification deliveries; the pre-flight that refuses an enforce policy
// (409) when MX hosts would bounce; and policy hosting's 404 for a watch-only domain.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DomainCheck } from '../../src/check/run.js';
import { DnsClient } from '../../src/dns/client.js';
import { Monitor } from '../../src/monitor/monitor.js';
import type { CheckedDomain } from '../../src/monitor/preflight.js';
import { DEFAULT_MONITOR_SETTINGS } from '../../src/monitor/settings.js';
import { stsIdFromDate } from '../../src/mtasts/record.js';
import { POLICY_PATH } from '../../src/mtasts/url.js';
import { policyCacheOf } from '../../src/server/app.js';
import type { CheckOutcome, StoredFinding } from '../../src/store/monitor-types.js';
import { openTestApp, reportJson, type TestApp } from '../helpers/browser.js';
import { TestPki } from '../helpers/pki.js';
import { type LabDnsServer, startDnsServer } from '../lab/dns-server.js';

const START = new Date('2026-05-10T08:00:00Z');
const settings = {
  mode: 'testing' as const,
  mx: ['mx.example.com'],
  maxAge: 604800,
  rua: ['mailto:r@example.com'],
};

const tlsa = (status: string, message: string): StoredFinding => ({
  section: 'dane',
  status,
  code: status === 'pass' ? 'DANE_TLSA_MATCH' : 'DANE_TLSA_MISMATCH',
  message,
  host: 'mx.example.com',
  ...(status === 'pass' ? {} : { fix: '_25._tcp.mx.example.com. IN TLSA 3 1 1 abcd' }),
});
const certFinding = (days: number): StoredFinding => ({
  section: 'tls',
  status: days > 21 ? 'pass' : 'warn',
  code: days > 21 ? 'TLS_CERT_VALID' : 'TLS_CERT_EXPIRING',
  message: `192.0.2.1: the certificate expires in ${days} days`,
  host: 'mx.example.com',
});
const mxFinding: StoredFinding = {
  section: 'mx',
  status: 'pass',
  code: 'MX_RECORDS',
  message: '1 MX record(s): 10 mx.example.com',
};

function outcome(
  domain: string,
  at: Date,
  findings: StoredFinding[],
  open: CheckOutcome['open'] = [],
): CheckOutcome {
  const status = findings.some((f) => f.status === 'fail')
    ? 'fail'
    : findings.some((f) => f.status === 'warn')
      ? 'warn'
      : 'pass';
  return {
    run: { domain, at: at.toISOString(), durationMs: 120, status, findings, trigger: 'schedule' },
    open,
    resolve: [],
  };
}

describe('monitoring API', () => {
  let t: TestApp;
  let labDns: LabDnsServer;
  let auth: { authorization: string };
  let firstRun: number;
  let secondRun: number;
  let otherRun: number;
  let alertId: number;
  /** What the stub checker's live check finds (the engine's real one runs checkDomain). */
  let live: CheckedDomain = { status: 'pass', findings: [] };
  const get = (url: string) => t.app.inject({ url, headers: auth });
  const send = (method: 'POST' | 'PATCH', url: string, payload: object) =>
    t.app.inject({ method, url, headers: auth, payload });

  before(async () => {
    // The monitor asks the resolver whether it validates before each audit: a lab DNS server answers.
    labDns = await startDnsServer([{ origin: 'example.com', records: [] }]);
    const resolver = new DnsClient({ servers: [{ host: labDns.host, port: labDns.port }], timeoutMs: 1000 });
    t = await openTestApp({ start: START, resolver });
    auth = { authorization: `Bearer ${t.password}` };
    const store = t.ctx.store;
    await store.addDomain('example.com', settings, START);
    await store.addDomain('other.example', { ...settings, mx: ['mx.other.example'] }, START);
    await store.addDomain('watched.example', { ...settings, watchOnly: true }, START);
    firstRun = (
      await store.recordCheck(
        outcome('example.com', START, [mxFinding, certFinding(90), tlsa('pass', 'matches')]),
        START,
      )
    ).runId;
    const later = new Date(START.getTime() + 3600_000);
    const second = await store.recordCheck(
      outcome(
        'example.com',
        later,
        [mxFinding, certFinding(20), tlsa('fail', 'the certificate no longer matches')],
        [
          {
            alert: {
              domain: 'example.com',
              code: 'DANE_TLSA_MISMATCH',
              subject: 'mx.example.com',
              severity: 'fail',
              message: 'the certificate no longer matches',
              fix: '_25._tcp.mx.example.com. IN TLSA 3 1 1 abcd',
            },
            deliveries: [
              {
                channel: 'webhook',
                target: 'http://127.0.0.1:9/hook',
                event: {
                  event: 'alert.opened',
                  domain: 'example.com',
                  code: 'DANE_TLSA_MISMATCH',
                  severity: 'fail',
                  message: 'the certificate no longer matches',
                  openedAt: later.toISOString(),
                },
              },
            ],
          },
        ],
      ),
      later,
    );
    secondRun = second.runId;
    alertId = second.opened[0]!;
    otherRun = (await store.recordCheck(outcome('other.example', later, [mxFinding]), later)).runId;
    // The engine's monitor on the real store; only its audit is handed in (the MonitorDeps seam), with
    // findings of the shape the audit gives (what the pre-flight reads is filled in).
    const monitor = new Monitor({
      store,
      settings: DEFAULT_MONITOR_SETTINGS,
      network: { resolver: t.ctx.resolver, ca: [], allowPrivate: true, timeoutMs: 1000 },
      now: () => t.clock.now,
      check: async (domain) => ({ domain, ...live }) as DomainCheck,
    });
    t.ctx.monitor = {
      checkNow: (domain) => monitor.check(domain, 'manual'),
      liveCheck: (domain) => monitor.liveCheck(domain),
    };
  });
  after(async () => {
    await t.close();
    await labDns.stop();
  });

  test('lists the alerts, filtered by domain and state', async () => {
    const all = await get('/api/alerts');
    assert.equal(all.statusCode, 200, all.body);
    assert.equal(all.json().total, 1);
    const [alert] = all.json().alerts;
    assert.equal(alert.id, alertId);
    assert.equal(alert.code, 'DANE_TLSA_MISMATCH');
    assert.equal(alert.subject, 'mx.example.com');
    assert.equal(alert.fix, '_25._tcp.mx.example.com. IN TLSA 3 1 1 abcd');
    assert.equal(alert.openedBy, secondRun);
    assert.equal(alert.resolvedAt, undefined);
    assert.equal((await get('/api/alerts?state=open&domain=Example.COM')).json().total, 1);
    assert.equal((await get('/api/alerts?state=resolved')).json().total, 0);
    assert.equal((await get('/api/alerts?domain=other.example')).json().total, 0);
    assert.equal((await get('/api/alerts?state=closed')).statusCode, 400);
  });

  test("a domain's history of checks, newest first, findings counted", async () => {
    const res = await get('/api/domains/example.com/checks');
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.domain, 'example.com');
    assert.deepEqual(
      body.runs.map((r: { id: number }) => r.id),
      [secondRun, firstRun],
    );
    assert.deepEqual(body.runs[0].counts, { pass: 1, warn: 1, fail: 1 });
    assert.equal(body.runs[0].findings, undefined);
    const page = (await get('/api/domains/example.com/checks?limit=1')).json();
    assert.equal(page.runs.length, 1);
    const next = (await get(`/api/domains/example.com/checks?limit=1&cursor=${page.nextCursor}`)).json();
    assert.equal(next.runs[0].id, firstRun);
    assert.equal((await get('/api/domains/unknown.example/checks')).statusCode, 404);
  });

  test('one run with its findings; unknown or malformed ids are 404', async () => {
    const res = await get(`/api/checks/${secondRun}`);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().findings.length, 3);
    assert.equal(res.json().findings[2].code, 'DANE_TLSA_MISMATCH');
    for (const id of ['424242', 'abc', '1e3', '99999999999999999999']) {
      assert.equal((await get(`/api/checks/${id}`)).statusCode, 404, id);
    }
  });

  test('the diff of two runs: added, gone and changed findings', async () => {
    const res = await get(`/api/checks/${secondRun}/diff?against=${firstRun}`);
    assert.equal(res.statusCode, 200, res.body);
    const diff = res.json();
    assert.equal(diff.from.id, firstRun);
    assert.equal(diff.to.id, secondRun);
    assert.deepEqual(
      diff.added.map((f: StoredFinding) => f.code),
      ['TLS_CERT_EXPIRING', 'DANE_TLSA_MISMATCH'],
    );
    assert.deepEqual(
      diff.gone.map((f: StoredFinding) => f.code),
      ['TLS_CERT_VALID', 'DANE_TLSA_MATCH'],
    );
    assert.deepEqual(diff.changed, []);
    assert.equal(diff.unchanged, 1);
    assert.equal((await get(`/api/checks/${secondRun}/diff?against=${otherRun}`)).statusCode, 409);
    assert.equal((await get(`/api/checks/${secondRun}/diff?against=424242`)).statusCode, 404);
    assert.equal((await get(`/api/checks/${secondRun}/diff`)).statusCode, 400);
  });

  test('check now: stored as a manual run of the domain', async () => {
    t.clock.advance(7200);
    const res = await send('POST', '/api/domains/other.example/check', {});
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().trigger, 'manual');
    assert.equal(res.json().domain, 'other.example');
    const history = (await get('/api/domains/other.example/checks')).json();
    assert.equal(history.runs[0].id, res.json().id);
    assert.equal((await send('POST', '/api/domains/unknown.example/check', {})).statusCode, 404);
    const checker = t.ctx.monitor;
    t.ctx.monitor = undefined;
    try {
      const off = await send('POST', '/api/domains/other.example/check', {});
      assert.equal(off.statusCode, 503);
      assert.equal(off.json().code, 'MONITOR_UNAVAILABLE');
    } finally {
      t.ctx.monitor = checker;
    }
  });

  test('the deliveries of the alert notifications', async () => {
    const res = await get('/api/deliveries');
    assert.equal(res.statusCode, 200, res.body);
    const [delivery] = res.json().deliveries;
    assert.equal(delivery.alertId, alertId);
    assert.equal(delivery.state, 'pending');
    assert.equal(delivery.event.event, 'alert.opened');
    assert.equal((await get(`/api/deliveries?alertId=${alertId}&state=pending`)).json().total, 1);
    assert.equal((await get('/api/deliveries?state=delivered')).json().total, 0);
  });

  test('enforce is refused (409) while an MX in DNS is not covered or fails STARTTLS or PKIX; force publishes', async () => {
    live = {
      status: 'fail',
      findings: [
        mxFinding,
        { section: 'mx', status: 'pass', code: 'MX_HOST_ADDRESSES', message: 'ok', host: 'mx.example.com' },
        { section: 'tls', status: 'pass', code: 'TLS_STARTTLS', message: 'ok', host: 'mx.example.com' },
        {
          section: 'tls',
          status: 'warn',
          code: 'TLS_NO_STARTTLS',
          message: '192.0.2.7:25 does not offer STARTTLS; mail arrives in plain text',
          host: 'mx2.example.com',
          fix: 'offer STARTTLS',
        },
      ],
    };
    const refused = await send('PATCH', '/api/domains/example.com', { mode: 'enforce' });
    assert.equal(refused.statusCode, 409, refused.body);
    const body = refused.json();
    assert.equal(body.code, 'PREFLIGHT_FAILED');
    assert.deepEqual(
      body.problems.map((p: { code: string; host: string }) => `${p.code} ${p.host}`),
      ['PREFLIGHT_MX_NOT_COVERED mx2.example.com', 'PREFLIGHT_STARTTLS mx2.example.com'],
    );
    assert.equal(body.problems[0].fix, 'add it to the policy: --mx mx2.example.com');
    assert.match(body.message, /mx2\.example\.com/);
    assert.equal((await get('/api/domains/example.com')).json().mode, 'testing', 'nothing stored');
    const created = await send('POST', '/api/domains', {
      name: 'new.example',
      mx: ['mx.example.com'],
      mode: 'enforce',
    });
    assert.equal(created.statusCode, 409);
    assert.equal(created.json().code, 'PREFLIGHT_FAILED');
    assert.equal((await get('/api/domains/new.example')).statusCode, 404);

    // Testing to enforce: the answer also says what TLS-RPT reported in the last 14 days.
    const report = reportJson({
      organization: 'Sender',
      reportId: 'r-enforce',
      domain: 'example.com',
      day: '2026-05-09',
      successful: 90,
      failures: [{ resultType: 'certificate-host-mismatch', count: 10 }],
    });
    const imported = await t.app.inject({
      method: 'POST',
      url: '/api/reports/import',
      headers: { ...auth, 'content-type': 'application/tlsrpt+json' },
      payload: report,
    });
    assert.equal(imported.statusCode, 200, imported.body);
    const forced = await send('PATCH', '/api/domains/example.com', { mode: 'enforce', force: true });
    assert.equal(forced.statusCode, 200, forced.body);
    assert.equal(forced.json().domain.mode, 'enforce');
    assert.match(
      forced.json().message,
      /TLS-RPT of the last 14 days: 90 sessions succeeded, 10 failed \(10 certificate-host-mismatch\): under enforce, those senders would not deliver/,
    );
    // Already enforced: a new mx list is checked again.
    const narrower = await send('PATCH', '/api/domains/example.com', {
      mx: ['mx.example.com', 'backup.example.com'],
    });
    assert.equal(narrower.statusCode, 409);

    live = { status: 'pass', findings: live.findings.slice(0, 3) };
    const fine = await send('PATCH', '/api/domains/other.example', {
      mode: 'enforce',
      mx: ['*.example.com'],
    });
    assert.equal(fine.statusCode, 200, fine.body);
    live = { status: 'error', error: 'resolver unreachable', findings: [] };
    const unchecked = await send('POST', '/api/domains', {
      name: 'new.example',
      mx: ['mx.example.com'],
      mode: 'enforce',
    });
    assert.equal(unchecked.statusCode, 409);
    assert.equal(unchecked.json().problems[0].code, 'PREFLIGHT_NOT_CHECKED');
    assert.match(unchecked.json().problems[0].message, /resolver unreachable/);
  });

  test('a watch-only domain has no hosted policy (404); a hosted one is served', async () => {
    await policyCacheOf(t.app).refresh();
    const policy = (host: string) => t.app.inject({ url: POLICY_PATH, headers: { host } });
    assert.equal((await policy('mta-sts.other.example')).statusCode, 200);
    const watched = await policy('mta-sts.watched.example');
    assert.equal(watched.statusCode, 404, watched.body);
    const added = await send('POST', '/api/domains', { name: 'Watched2.example', watchOnly: true });
    assert.equal(added.statusCode, 201, added.body);
    assert.equal(added.json().domain.watchOnly, true);
    assert.equal(added.json().publish, undefined, 'nothing to publish here');
    await policyCacheOf(t.app).refresh();
    assert.equal((await policy('mta-sts.watched2.example')).statusCode, 404);
    assert.equal((await get('/api/domains/watched2.example')).json().watchOnly, true);
    assert.equal((await get('/api/domains/other.example')).json().watchOnly, undefined);
  });
});

describe('setup status', () => {
  let dns: LabDnsServer;
  let t: TestApp;
  let pki: TestPki;
  const get = async (url: string) =>
    t.app.inject({ url, headers: { authorization: `Bearer ${t.password}` } });

  before(async () => {
    const txt = (name: string, data: string) => ({ name, type: 'TXT' as const, data });
    dns = await startDnsServer([
      {
        origin: 'ready.example',
        records: [
          txt('_mta-sts.ready.example', `v=STSv1; id=${stsIdFromDate(START)}`),
          txt('_smtp._tls.ready.example', 'v=TLSRPTv1; rua=mailto:tlsrpt@ready.example'),
          { name: 'mta-sts.ready.example', type: 'A', data: '192.0.2.10' },
        ],
      },
      { origin: 'bare.example', records: [txt('bare.example', 'v=spf1 -all')] },
    ]);
    const resolver = new DnsClient({ servers: [{ host: dns.host, port: dns.port }], timeoutMs: 1000 });
    t = await openTestApp({ start: START, resolver });
    pki = TestPki.create();
  });
  after(async () => {
    await t.close();
    await dns.stop();
    pki.remove();
  });

  test('a fresh start says plainly that it cannot receive anything yet, and why', async () => {
    const res = await get('/api/setup');
    assert.equal(res.statusCode, 200, res.body);
    const status = res.json();
    assert.equal(status.receiving, false);
    assert.equal(
      status.summary,
      'mxguard cannot receive anything yet: no domain is configured; no HTTPS listener serves policies or takes reports; no SMTP or IMAP intake takes reports by mail.',
    );
    assert.deepEqual(
      status.items.map((i: { code: string }) => i.code),
      ['SETUP_NO_DOMAIN', 'SETUP_NO_HTTPS', 'SETUP_NO_MAIL_INTAKE'],
    );
    for (const item of status.items) assert.ok(item.fix.length > 0, item.code);
  });

  test('per domain: the policy host, the published id, the TLS-RPT record and where its reports go', async () => {
    await t.ctx.store.addDomain('ready.example', settings, START);
    await t.ctx.store.addDomain('bare.example', settings, START);
    t.ctx.config.tlsListen = { host: '127.0.0.1', port: 0 };
    const codes = (status: { items: { domain?: string; code: string }[] }) =>
      status.items.map((i) => `${i.domain ?? '-'} ${i.code}`);
    // An HTTPS listener without a certificate for either policy host.
    assert.deepEqual(
      codes((await get('/api/setup')).json()).filter((c: string) => c.includes('CERTIFICATE')),
      ['bare.example SETUP_NO_CERTIFICATE', 'ready.example SETUP_NO_CERTIFICATE'],
    );
    // ready.example's in the certs folder; bare.example's configured, for another name.
    const readyCert = pki.issue('mta-sts.ready.example', { sans: ['mta-sts.ready.example'] });
    const otherCert = pki.issue('other', { sans: ['mta-sts.other.example'] });
    const folder = join(t.ctx.config.dataDir, 'certs', 'mta-sts.ready.example');
    mkdirSync(folder, { recursive: true });
    copyFileSync(readyCert.certPath, join(folder, 'fullchain.pem'));
    Object.assign(t.ctx.config, {
      certificates: { 'mta-sts.bare.example': { cert: otherCert.certPath, key: otherCert.key.path } },
    });
    const status = (await get('/api/setup')).json();
    assert.equal(status.receiving, true);
    const items = codes(status);
    const invalid = status.items.find((i: { code: string }) => i.code === 'SETUP_CERTIFICATE_INVALID');
    assert.match(invalid.message, /does not name it \(DNS:mta-sts\.other\.example\)/);
    assert.deepEqual(items, [
      '- SETUP_NO_MAIL_INTAKE',
      'bare.example SETUP_CERTIFICATE_INVALID',
      'bare.example SETUP_POLICY_HOST_DNS',
      'bare.example SETUP_ID_NOT_CURRENT',
      'bare.example SETUP_NO_TLSRPT',
      'ready.example SETUP_RUA_UNREACHABLE',
    ]);
    const idItem = status.items.find((i: { code: string }) => i.code === 'SETUP_ID_NOT_CURRENT');
    assert.equal(idItem.fix, `publish _mta-sts.bare.example. TXT "v=STSv1; id=${stsIdFromDate(START)}"`);
    assert.match(status.summary, /^6 setup problems left/);
    t.ctx.config.smtp = { host: '127.0.0.1', port: 0 };
    const withSmtp = (await get('/api/setup')).json();
    assert.deepEqual(
      withSmtp.items.map((i: { domain?: string }) => i.domain),
      ['bare.example', 'bare.example', 'bare.example', 'bare.example'],
    );
  });
});
