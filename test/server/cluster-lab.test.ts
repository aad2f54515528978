// Two `mxguard serve` processes (the built command) on one lab PostgreSQL (issue 16's cluster proof):
// - thousands of TLS-RPT reports posted over HTTP to both at once, with duplicates, 20 in flight; the
//   instance running the background work is killed with SIGKILL during the load (by PID) and
//   restarted; a post that finds its instance gone is sent to the other one, as a load balancer does.
//   Afterwards every report answered 2xx is stored exactly once, and every stored report is whole
//   (its policy row and each of its failure rows);
// - the other instance takes over the background work (the monitor's schedule) and the restarted one
//   stays on standby: the monitor's start check ran once per holder, never in two instances;
// - a policy changed through one instance's API is served by the other (its change feed);
// - a session started on one instance works on the other, and a logout on either ends it on both;
// - a watched lab domain whose state changes (its policy does not cover its MX, then does) gives one
//   webhook per alert change, with "check now" asked of both instances at once.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { openPostgresStore } from '../../src/store/postgres.js';
import { eventually } from '../fixtures/serve/helpers.js';
import { reportJson } from '../helpers/browser.js';
import { type StandardChain, standardChain, TestPki } from '../helpers/pki.js';
import { httpRequest, type ListeningServe, startServe } from '../helpers/serve-process.js';
import { type LabDnsServer, startDnsServer } from '../lab/dns-server.js';
import { labCert, type PolicyHost, startPolicyHost } from '../lab/https-server.js';
import { type LabPostgres, startPostgres } from '../lab/postgres.js';
import { type LabSmtpServer, startSmtpServer } from '../lab/smtp-server.js';

const PASSWORD = 'cluster-test-password-1';
const UNIQUE_REPORTS = 2000;
const IN_FLIGHT = 20;
const BAD_POLICY = 'version: STSv1\nmode: enforce\nmx: old.watch.test\nmax_age: 604800\n';
const GOOD_POLICY = 'version: STSv1\nmode: enforce\nmx: mx.watch.test\nmax_age: 604800\n';

let lab: LabPostgres;
let url: string;
let pki: TestPki;
let chain: StandardChain;
let dns: LabDnsServer;
let smtp: LabSmtpServer;
let policyHost: PolicyHost;
let hookServer: http.Server;
/** The _mta-sts record, changed (a new id) with the policy. */
const stsRecord = { name: '_mta-sts.watch.test', type: 'TXT' as const, data: 'v=STSv1; id=20261201000000' };
const hooks: Array<{ event: string; domain: string; code: string; host?: string }> = [];
const dirs: string[] = [];
/** The two instances by slot; a killed one is replaced in its slot. */
const instances: ListeningServe[] = [];
let serveArgs: (dataDir: string) => string[];

function newDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-cluster-lab-'));
  dirs.push(dir);
  return dir;
}

/** Starts the instance of `slot` (a data directory of its own: only the database is shared). */
async function startInstance(slot: number): Promise<ListeningServe> {
  const serve = await startServe(serveArgs(newDir()), { env: { MXGUARD_ADMIN_PASSWORD: PASSWORD } });
  instances[slot] = serve;
  return serve;
}

/** Which slot runs the background work, once one says so and the other says standby. */
async function backgroundHolder(): Promise<number> {
  return eventually(() => {
    const says = instances.map((s) => lastRole(s.stdout()));
    if (says[0] === 'this instance' && says[1] === 'standby') return 0;
    if (says[1] === 'this instance' && says[0] === 'standby') return 1;
    return undefined;
  }, 'one instance running the background work and the other on standby');
}

/** The last "background work: ..." role an instance logged. */
function lastRole(log: string): string | undefined {
  const roles = [...log.matchAll(/"background":"(this instance|standby)"/g)];
  return roles.at(-1)?.[1];
}

before(async () => {
  lab = await startPostgres();
  url = await lab.createDatabase('cluster_lab');

  pki = TestPki.create('mxguard-cluster-lab-');
  chain = standardChain(pki, { host: 'mx.watch.test', sans: ['mx.watch.test', 'mta-sts.watch.test'] });
  const cert = labCert(chain.leaf.key, [chain.leaf, chain.intermediate]);
  smtp = await startSmtpServer({ cert });
  policyHost = await startPolicyHost({
    sites: { 'mta-sts.watch.test': { kind: 'serve', body: BAD_POLICY } },
    defaultCert: cert,
  });
  dns = await startDnsServer([
    {
      origin: 'watch.test',
      records: [
        { name: 'watch.test', type: 'MX', data: { preference: 10, exchange: 'mx.watch.test' } },
        { name: 'mx.watch.test', type: 'A', data: '127.0.0.1' },
        stsRecord,
        { name: 'mta-sts.watch.test', type: 'A', data: '127.0.0.1' },
      ],
    },
  ]);
  hookServer = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hooks.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', resolve));
  const hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`;

  // The domains, before any instance starts: a hosted one and a watched one.
  const store = await openPostgresStore(url);
  await store.addDomain(
    'example.test',
    { mode: 'testing', mx: ['mx.example.test'], maxAge: 86400, rua: ['mailto:tlsrpt@example.test'] },
    new Date(),
  );
  await store.addDomain(
    'watch.test',
    { mode: 'testing', mx: ['mx.watch.test'], maxAge: 86400, rua: ['mailto:r@watch.test'], watchOnly: true },
    new Date(),
  );
  await store.close();

  // Every post comes from 127.0.0.1: the per-client intake limit must not be what answers.
  const config = join(newDir(), 'mxguard.json');
  writeFileSync(config, JSON.stringify({ intake: { ratePerMinute: 1_000_000 } }));
  serveArgs = (dataDir) => [
    '--data-dir',
    dataDir,
    '--database',
    url,
    '--config',
    config,
    '--workers',
    '1',
    '--resolver',
    `${dns.host}:${dns.port}`,
    '--ca-file',
    chain.root.certPath,
    '--allow-private',
    '--timeout',
    '5',
    '--smtp-port',
    String(smtp.port),
    '--https-port',
    String(policyHost.port),
    '--alert-webhook',
    hookUrl,
    '--monitor-interval',
    '3600',
  ];
  await Promise.all([startInstance(0), startInstance(1)]);
});

after(async () => {
  await Promise.all(instances.map((s) => s.stop()));
  await Promise.all([dns?.stop(), smtp?.stop(), policyHost?.stop()]);
  await new Promise((resolve) => hookServer?.close(resolve));
  await lab?.stop();
  pki?.remove();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Failure rows of report number i: 1 to 3. */
const failuresOf = (i: number) => 1 + (i % 3);

function report(i: number): string {
  return reportJson({
    organization: `Sender ${i % 7}`,
    reportId: `cluster-${i}`,
    domain: 'example.test',
    day: `2026-11-0${1 + (i % 9)}`,
    successful: i,
    failures: Array.from({ length: failuresOf(i) }, (_, n) => ({
      resultType: 'certificate-expired',
      count: n + 1,
      sendingMtaIp: `192.0.2.${n + 1}`,
      receivingMxHostname: 'mx.example.test',
    })),
  });
}

async function query<R>(sql: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as R[];
  } finally {
    await client.end();
  }
}

const api = (slot: number, method: string, path: string, json?: unknown) =>
  httpRequest(instances[slot]!.port, {
    method,
    path,
    headers: { authorization: `Bearer ${PASSWORD}` },
    ...(json === undefined ? {} : { json }),
  });

describe('two serve instances on one PostgreSQL', () => {
  let firstHolder: number;

  it('one instance runs the background work: its monitor opens the alert of the watched domain, once', async () => {
    firstHolder = await backgroundHolder();
    await eventually(
      () => hooks.find((h) => h.event === 'alert.opened'),
      'the opened alert’s webhook',
      60_000,
    );
    const runs = await query<{ trigger: string }>(
      `SELECT started_by AS trigger FROM check_runs WHERE domain = 'watch.test'`,
    );
    assert.deepEqual(
      runs.map((r) => r.trigger),
      ['start'],
      'one start check, by the holder only',
    );
  });

  it('reports posted to both, the holder killed mid-load and restarted: each 2xx report stored once and whole', async () => {
    // Each report once, every third twice more: posted in a shuffled order to alternating instances.
    const posts: number[] = [];
    for (let i = 0; i < UNIQUE_REPORTS; i++) posts.push(...(i % 3 === 0 ? [i, i, i] : [i]));
    for (let k = posts.length - 1; k > 0; k--) {
      const j = (k * 7919) % (k + 1);
      [posts[k], posts[j]] = [posts[j]!, posts[k]!];
    }
    const acknowledged = new Set<number>();
    const answers = new Map<number, number>();
    let next = 0;
    let killedAt: number | undefined;
    let restarting: Promise<unknown> | undefined;
    const send = async (slot: number, i: number) =>
      httpRequest(instances[slot]!.port, {
        method: 'POST',
        path: '/tlsrpt',
        headers: { 'content-type': 'application/tlsrpt+json' },
        json: JSON.parse(report(i)),
      });
    const poster = async () => {
      for (;;) {
        const n = next++;
        if (n >= posts.length) return;
        const i = posts[n]!;
        if (n === Math.floor(posts.length / 3) && killedAt === undefined) {
          // The background holder dies without a word, in the middle of the load; once the other
          // instance took over its work, it comes back.
          killedAt = n;
          const killed = instances[firstHolder]!;
          killed.child.kill('SIGKILL');
          await killed.exit;
          const other = instances[1 - firstHolder]!;
          restarting = eventually(
            () => (lastRole(other.stdout()) === 'this instance' ? true : undefined),
            'the other instance to take over the background work',
          ).then(() => startInstance(firstHolder));
        }
        let slot = n % 2;
        let answer: { status: number } | undefined;
        for (let attempt = 0; attempt < 2 && answer === undefined; attempt++) {
          try {
            answer = await send(slot, i);
          } catch {
            slot = 1 - slot; // its instance is gone: the other one, as a load balancer would
          }
        }
        if (answer === undefined) continue;
        answers.set(answer.status, (answers.get(answer.status) ?? 0) + 1);
        if (answer.status >= 200 && answer.status < 300) acknowledged.add(i);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, poster));
    await restarting;
    assert.ok(killedAt !== undefined);
    assert.ok(acknowledged.size > UNIQUE_REPORTS / 2, `answers by status: ${JSON.stringify([...answers])}`);

    const stored = await query<{ report_id: string; copies: number }>(
      `SELECT report_id, count(*)::int AS copies FROM reports GROUP BY organization, report_id`,
    );
    assert.equal(stored.filter((r) => r.copies !== 1).length, 0, 'a report stored more than once');
    const storedIds = new Set(stored.map((r) => Number(r.report_id.replace('cluster-', ''))));
    const missing = [...acknowledged].filter((i) => !storedIds.has(i));
    assert.deepEqual(missing, [], 'reports answered 2xx but not stored');
    // Whole: the report's policy row and every failure row, whoever stored it and whenever it died.
    const rows = await query<{ report_id: string; policies: number; failures: number }>(
      `SELECT r.report_id,
         (SELECT count(*)::int FROM report_policies p WHERE p.report = r.id) AS policies,
         (SELECT count(*)::int FROM failures f JOIN report_policies p ON f.policy = p.id WHERE p.report = r.id)
           AS failures
       FROM reports r`,
    );
    const broken = rows.filter((r) => {
      const i = Number(r.report_id.replace('cluster-', ''));
      return r.policies !== 1 || r.failures !== failuresOf(i);
    });
    assert.deepEqual(broken, [], 'half-stored reports');
  });

  it('the other instance took over the background work, the restarted one is on standby', async () => {
    const holder = await backgroundHolder();
    assert.equal(holder, 1 - firstHolder);
    // The new holder's schedule began with a start check; the alert still open is not sent again.
    const runs = await eventually(async () => {
      const rows = await query<{ trigger: string }>(
        `SELECT started_by AS trigger FROM check_runs WHERE domain = 'watch.test' ORDER BY at_ms, id`,
      );
      return rows.length === 2 ? rows : undefined;
    }, 'the start check of the instance that took over');
    assert.deepEqual(
      runs.map((r) => r.trigger),
      ['start', 'start'],
    );
    assert.equal(hooks.filter((h) => h.event === 'alert.opened').length, 1);
  });

  it('a policy changed through one instance is served by the other', async () => {
    const changed = await api(0, 'PATCH', '/api/domains/example.test', { mx: ['mx2.example.test'] });
    assert.equal(changed.status, 200, changed.body);
    await eventually(async () => {
      const policy = await httpRequest(instances[1]!.port, {
        path: '/.well-known/mta-sts.txt',
        headers: { host: 'mta-sts.example.test' },
      });
      return /mx: mx2\.example\.test/.test(policy.body) ? true : undefined;
    }, 'the other instance serving the changed policy');
  });

  it('a session started on one instance works on the other, and ending it there ends it everywhere', async () => {
    const login = await httpRequest(instances[0]!.port, {
      method: 'POST',
      path: '/api/login',
      json: { password: PASSWORD },
    });
    assert.equal(login.status, 200, login.body);
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    assert.match(cookie, /^mxguard_session=./);
    const session = (slot: number) =>
      httpRequest(instances[slot]!.port, { path: '/api/session', headers: { cookie } });
    assert.equal((await session(1)).status, 200);
    const out = await httpRequest(instances[1]!.port, {
      method: 'POST',
      path: '/api/logout',
      headers: { cookie },
      json: {},
    });
    assert.equal(out.status, 204, out.body);
    assert.equal((await session(0)).status, 401);
    assert.equal((await session(1)).status, 401);
  });

  it('the watched domain fixed, "check now" asked of both at once: one resolved alert, one webhook', async () => {
    policyHost.setSite('mta-sts.watch.test', { kind: 'serve', body: GOOD_POLICY });
    stsRecord.data = 'v=STSv1; id=20261207000000';
    for (let round = 0; round < 3; round++) {
      const both = await Promise.all(
        [0, 1].map((slot) => api(slot, 'POST', '/api/domains/watch.test/check', {})),
      );
      for (const answer of both) assert.equal(answer.status, 200, answer.body);
    }
    await eventually(
      () => hooks.find((h) => h.event === 'alert.resolved'),
      'the resolved alert’s webhook',
      60_000,
    );
    const alerts = await query<{ code: string; resolved: boolean }>(
      `SELECT code, resolved_at IS NOT NULL AS resolved FROM alerts WHERE domain = 'watch.test' ORDER BY id`,
    );
    assert.deepEqual(
      alerts.filter((a) => a.code === 'MTASTS_MX_NOT_COVERED'),
      [{ code: 'MTASTS_MX_NOT_COVERED', resolved: true }],
      'one alert, opened once and resolved once',
    );
    // Deliveries are sent by the holder's deliverer: once none is pending, every webhook has arrived.
    await eventually(async () => {
      const pending = await query<{ n: number }>(
        `SELECT count(*)::int AS n FROM deliveries WHERE state = 'pending'`,
      );
      return pending[0]?.n === 0 ? true : undefined;
    }, 'every delivery sent');
    // One webhook per alert change: an opened one for each alert, a resolved one for each resolved alert.
    const changes = alerts.flatMap((a) => [
      `alert.opened ${a.code}`,
      ...(a.resolved ? [`alert.resolved ${a.code}`] : []),
    ]);
    assert.deepEqual(hooks.map((h) => `${h.event} ${h.code}`).sort(), changes.sort());
  });
});
