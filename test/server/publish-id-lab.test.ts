// serve publishes the `_mta-sts` id itself (src/server/publish-id.ts) against a real authoritative server:
// knotd signing the lab zones and taking TSIG-signed DNS UPDATEs (test/lab/knot-update.ts), unbound
// validating. serve's app runs with settings loaded from a config file with `dnsUpdate` (per domain) and
// its live lookups going to unbound. A policy change through the API publishes the new id, read back
// with AD through unbound; a key the zone does not accept gives `failed` with its code while the policy
// is stored and DNS is unchanged; a domain without a publisher sends nothing (knotd's RRset unchanged).
// The dashboard in Chromium shows each domain's state: in DNS yes, publishing failed with the record to
// publish by hand, nothing for a domain without a publisher.
// `mxguard domain add|set` (the built CLI, on its own data directory) publishes the same way with
// --dns-server/--tsig-key or --config (serve's config file).
//
// Needs root (port 53 on 127.0.58.x) and the Debian packages knot, unbound, bind9-dnsutils.
// Addresses: 127.0.58.1 knotd, .2 unbound; no other test file uses 127.0.58.x.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { DnsClient } from '../../src/dns/client.js';
import { joinTxt } from '../../src/dns/resolver.js';
import { buildApp } from '../../src/server/app.js';
import { ensureAdminPassword } from '../../src/server/auth.js';
import { createLogger, loadServeSettings } from '../../src/server/config.js';
import type { ServerContext } from '../../src/server/context.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { launchBrowser } from '../helpers/browser.js';
import { runCli } from '../helpers/cli.js';
import { type KnotUpdateLab, startKnotUpdateLab } from '../lab/knot-update.js';

let lab: KnotUpdateLab;
let app: FastifyInstance;
let ctx: ServerContext;
let dir: string;
let auth: { authorization: string };
let password: string;
let configFile: string;
/** serve's log lines (JSON). */
const logLines: string[] = [];
// The store's clock (policy ids are UTC seconds); TSIG signs with the real time.
let clock = new Date('2026-12-07T10:00:00Z');

before(async () => {
  lab = await startKnotUpdateLab({
    zones: [
      { name: 'p1.test', records: [] },
      { name: 'p2.test', records: ['_mta-sts TXT "v=STSv1; id=1"'] },
      { name: 'p3.test', records: ['_mta-sts TXT "v=STSv1; id=1"'] },
      { name: 'p4.test', records: [] },
      { name: 'p5.test', records: ['_mta-sts TXT "v=STSv1; id=1"'] },
      { name: 'p6.test', records: [] },
    ],
    keys: [
      // upd may update every zone (so p3.test would change if anything were sent for it); other only p1.test.
      {
        name: 'upd',
        algorithm: 'hmac-sha256',
        zones: ['p1.test', 'p2.test', 'p3.test', 'p4.test', 'p5.test', 'p6.test'],
      },
      { name: 'other', algorithm: 'hmac-sha512', zones: ['p1.test'] },
    ],
    authoritativeAddress: '127.0.58.1',
    resolverAddress: '127.0.58.2',
  });
  dir = mkdtempSync(join(tmpdir(), 'mxguard-publish-id-'));
  const server = `${lab.authoritative.host}:${lab.authoritative.port}`;
  configFile = join(dir, 'mxguard.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      dnsUpdate: {
        domains: {
          // TTL 1: the resolver's cached earlier id expires while serve looks for the new one.
          'p1.test': { server, tsigKey: lab.keyFiles.upd, ttl: 1 },
          'P2.test.': { server, tsigKey: lab.keyFiles.other, zone: 'p2.test' },
          // for `mxguard domain set --config` only
          'p4.test': { server, tsigKey: lab.keyFiles.upd, ttl: 1 },
          // the default TTL (300): the resolver keeps the first id cached
          'p6.test': { server, tsigKey: lab.keyFiles.upd },
        },
      },
    }),
  );
  const settings = loadServeSettings({
    cli: { config: configFile, dataDir: join(dir, 'data') },
    env: {},
    cwd: dir,
  });
  const store = await openSqliteStore(settings.dataDir);
  ctx = {
    store,
    config: settings,
    logger: createLogger(
      'info',
      new Writable({
        write(chunk, _encoding, done) {
          logLines.push(
            ...String(chunk)
              .split('\n')
              .filter((l) => l !== ''),
          );
          done();
        },
      }),
    ),
    metrics: new Registry(),
    resolver: new DnsClient({ servers: [lab.resolver], timeoutMs: 2000 }),
    network: { ca: [], allowPrivate: true, timeoutMs: 5000 },
    now: () => clock,
  };
  const generated = await ensureAdminPassword(ctx, undefined);
  if (generated === undefined) throw new Error('a fresh store must get a generated admin password');
  password = generated;
  auth = { authorization: `Bearer ${password}` };
  app = buildApp(ctx);
  await app.ready();
});

after(async () => {
  await app?.close();
  await ctx?.store.close();
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const request = async (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: object) => {
  clock = new Date(clock.getTime() + 60_000);
  return app.inject({ method, url, headers: auth, ...(payload ? { payload } : {}) });
};

/** The `_mta-sts` TXT answer through the validating resolver: the values and whether it is AD. */
async function throughResolver(domain: string): Promise<{ values: string[]; secure: boolean }> {
  const answer = await new DnsClient({ servers: [lab.resolver] }).query(`_mta-sts.${domain}`, 'TXT');
  assert.equal(answer.outcome, 'ok', lab.logs());
  return {
    values: answer.answers.map((r) => (r.type === 'TXT' ? joinTxt(r.data) : '')),
    secure: answer.secure,
  };
}

describe('serve publishes the _mta-sts id by DNS UPDATE', () => {
  it('adding a domain publishes its id; the validating resolver answers it with AD', async () => {
    const res = await request('POST', '/api/domains', { name: 'p1.test', mx: ['mx.p1.test'] });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json();
    const id = body.domain.policyId;
    assert.equal(body.dnsUpdate.status, 'visible', JSON.stringify(body.dnsUpdate));
    assert.equal(body.dnsUpdate.zone, 'p1.test');
    assert.equal(body.dnsUpdate.policyId, id);
    assert.match(
      body.message,
      /published the TXT record _mta-sts\.p1\.test "v=STSv1; id=\d{14}" by DNS UPDATE/,
    );
    assert.deepEqual(await lab.authoritativeRRset('_mta-sts.p1.test', 'TXT'), [`"v=STSv1; id=${id}"`]);
    assert.deepEqual(await throughResolver('p1.test'), { values: [`v=STSv1; id=${id}`], secure: true });
  });

  it('a policy change publishes the new id, visible through the resolver and on the domain', async () => {
    const before = (await request('GET', '/api/domains/p1.test')).json();
    const res = await request('PATCH', '/api/domains/p1.test', { maxAge: 86400 });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.policyIdChanged, true);
    assert.notEqual(body.domain.policyId, before.policyId);
    assert.equal(body.dnsUpdate.status, 'visible', JSON.stringify(body.dnsUpdate));
    const id = body.domain.policyId;
    assert.deepEqual(await lab.authoritativeRRset('_mta-sts.p1.test', 'TXT'), [`"v=STSv1; id=${id}"`]);
    assert.deepEqual(await throughResolver('p1.test'), { values: [`v=STSv1; id=${id}`], secure: true });
    const shown = (await request('GET', '/api/domains/p1.test')).json();
    assert.equal(shown.published.matches, true);
    assert.equal(shown.dnsUpdate.status, 'visible');
    assert.equal(shown.dnsUpdate.policyId, id);
  });

  it('a key the zone does not take: failed with its code, the policy changed anyway, DNS unchanged', async () => {
    const res = await request('POST', '/api/domains', { name: 'p2.test', mx: ['mx.p2.test'] });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json();
    assert.equal(body.dnsUpdate.status, 'failed', JSON.stringify(body.dnsUpdate));
    assert.equal(body.dnsUpdate.code, 'TSIG_BADKEY');
    assert.match(body.message, /failed \(TSIG_BADKEY\).*publish the record by hand/);
    assert.deepEqual(body.dnsUpdate.record, {
      name: '_mta-sts.p2.test',
      value: `v=STSv1; id=${body.domain.policyId}`,
    });
    const changed = await request('PATCH', '/api/domains/p2.test', { maxAge: 86400 });
    assert.equal(changed.statusCode, 200, changed.body);
    assert.equal(changed.json().dnsUpdate.code, 'TSIG_BADKEY');
    const shown = (await request('GET', '/api/domains/p2.test')).json();
    assert.equal(shown.maxAge, 86400);
    assert.equal(shown.policyId, changed.json().domain.policyId);
    assert.equal(shown.dnsUpdate.status, 'failed');
    assert.equal(shown.published.matches, false);
    assert.deepEqual(await lab.authoritativeRRset('_mta-sts.p2.test', 'TXT'), ['"v=STSv1; id=1"']);
    const logged = logLines.map((l) => JSON.parse(l)).filter((l) => l.domain === 'p2.test');
    assert.deepEqual(
      logged.map((l) => [l.level, l.msg, l.code, l.policyId]),
      [
        [40, 'publishing the _mta-sts id failed', 'TSIG_BADKEY', body.domain.policyId],
        [40, 'publishing the _mta-sts id failed', 'TSIG_BADKEY', shown.policyId],
      ],
    );
  });

  it('without a publisher for the domain nothing is sent: the API says not-configured, DNS unchanged', async () => {
    const res = await request('POST', '/api/domains', { name: 'p3.test', mx: ['mx.p3.test'] });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().dnsUpdate.status, 'not-configured');
    assert.match(res.json().message, /publish the TXT record _mta-sts\.p3\.test "v=STSv1; id=\d{14}"/);
    const changed = await request('PATCH', '/api/domains/p3.test', { maxAge: 86400 });
    assert.equal(changed.json().dnsUpdate.status, 'not-configured');
    assert.deepEqual(await lab.authoritativeRRset('_mta-sts.p3.test', 'TXT'), ['"v=STSv1; id=1"']);
    const shown = (await request('GET', '/api/domains/p3.test')).json();
    assert.equal(shown.dnsUpdate, undefined);
    assert.equal(existsSync(join(ctx.config.dataDir, 'dns-update', 'p3.test.json')), false);
  });

  it('while the resolver still has the old id cached: published, not visible, said so', async () => {
    const first = (await request('POST', '/api/domains', { name: 'p6.test', mx: ['mx.p6.test'] })).json();
    assert.equal(first.dnsUpdate.status, 'visible', JSON.stringify(first.dnsUpdate));
    const res = await request('PATCH', '/api/domains/p6.test', { maxAge: 86400 });
    const body = res.json();
    assert.equal(body.dnsUpdate.status, 'published', JSON.stringify(body.dnsUpdate));
    assert.match(body.dnsUpdate.error, new RegExp(`the resolver still answers id ${first.domain.policyId}`));
    assert.match(body.message, /not visible through the resolver yet/);
    assert.deepEqual(await lab.authoritativeRRset('_mta-sts.p6.test', 'TXT'), [
      `"v=STSv1; id=${body.domain.policyId}"`,
    ]);
    const shown = (await request('GET', '/api/domains/p6.test')).json();
    assert.equal(shown.published.matches, false);
    assert.equal(shown.dnsUpdate.status, 'published');
  });

  it('the dashboard shows for each domain whether its id is in DNS', async () => {
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const browser = await launchBrowser();
    try {
      const { page } = browser;
      await page.goto(url);
      await page.fill('#password', password);
      await page.click('form[data-testid=login-form] button[type=submit]');
      await page.locator('#nav').waitFor();

      await page.goto(`${url}/#/domains/p1.test`);
      await page.locator('h1', { hasText: 'p1.test' }).waitFor();
      assert.equal(
        await page.getByTestId('dns-update').textContent(),
        'in DNS: yes (published by DNS UPDATE)',
      );

      await page.goto(`${url}/#/domains/p2.test`);
      await page.locator('h1', { hasText: 'p2.test' }).waitFor();
      const failed = await page.getByTestId('dns-update').textContent();
      assert.match(failed ?? '', /^in DNS: publishing failed: .*\[TSIG_BADKEY\]$/);
      const id = (await request('GET', '/api/domains/p2.test')).json().policyId;
      const warning = await page.getByTestId('published-warning').textContent();
      assert.match(warning ?? '', new RegExp(`_mta-sts\\.p2\\.test\\.  TXT  "v=STSv1; id=${id}"`));

      await page.goto(`${url}/#/domains/p6.test`);
      await page.locator('h1', { hasText: 'p6.test' }).waitFor();
      assert.match(
        (await page.getByTestId('dns-update').textContent()) ?? '',
        /^in DNS: not yet \(the resolver still answers id \d{14} \(a cached record lasts until its TTL ends\)\)$/,
      );

      await page.goto(`${url}/#/domains/p3.test`);
      await page.locator('h1', { hasText: 'p3.test' }).waitFor();
      await page.getByTestId('published-warning').waitFor();
      assert.equal(await page.getByTestId('dns-update').count(), 0);
      assert.deepEqual(browser.errors, []);
    } finally {
      await browser.close();
    }
  });
});

describe('mxguard domain add|set publish the _mta-sts id by DNS UPDATE', () => {
  const dataDir = () => join(dir, 'cli-data');
  const network = () => ['--resolver', `${lab.resolver.host}:${lab.resolver.port}`, '--timeout', '5'];
  const server = () => `${lab.authoritative.host}:${lab.authoritative.port}`;

  it('add with --config publishes the first id; set with --dns-server and --tsig-key the next', async () => {
    // The config gives p4.test TTL 1, so the resolver's cached first id expires while set looks.
    const added = runCli([
      ...['domain', 'add', 'p4.test', '--mx', 'mx.p4.test', '--data-dir', dataDir(), '--json'],
      ...['--config', configFile, ...network()],
    ]);
    assert.equal(added.code, 0, added.stderr);
    const first = JSON.parse(added.stdout);
    assert.equal(first.dnsUpdate.status, 'visible', added.stdout);
    assert.deepEqual(await lab.authoritativeRRset('_mta-sts.p4.test', 'TXT'), [
      `"v=STSv1; id=${first.domain.policyId}"`,
    ]);
    const set = runCli([
      ...['domain', 'set', 'p4.test', '--max-age', '86400', '--data-dir', dataDir()],
      ...['--dns-server', server(), '--tsig-key', lab.keyFiles.upd!, ...network()],
    ]);
    assert.equal(set.code, 0, set.stderr);
    const shown = JSON.parse(runCli(['domain', 'show', 'p4.test', '--json', '--data-dir', dataDir()]).stdout);
    assert.notEqual(shown.domain.policyId, first.domain.policyId);
    assert.match(
      set.stdout,
      new RegExp(
        `published the TXT record _mta-sts\\.p4\\.test "v=STSv1; id=${shown.domain.policyId}" by DNS UPDATE \\(zone p4\\.test\\); the resolver answers it`,
      ),
    );
    assert.deepEqual(await throughResolver('p4.test'), {
      values: [`v=STSv1; id=${shown.domain.policyId}`],
      secure: true,
    });
  });

  it('set with a key the zone refuses: exit 1 naming the code and the record, the change stored, DNS unchanged', async () => {
    const added = runCli(['domain', 'add', 'p5.test', '--mx', 'mx.p5.test', '--data-dir', dataDir()]);
    assert.equal(added.code, 0, added.stderr);
    const set = runCli([
      ...['domain', 'set', 'p5.test', '--max-age', '86400', '--data-dir', dataDir()],
      ...['--dns-server', server(), '--tsig-key', lab.keyFiles.other!, ...network()],
    ]);
    assert.equal(set.code, 1, set.stderr);
    const shown = JSON.parse(runCli(['domain', 'show', 'p5.test', '--json', '--data-dir', dataDir()]).stdout);
    assert.equal(shown.domain.maxAge, 86400);
    assert.match(
      set.stderr,
      new RegExp(
        `p5\\.test: publishing the TXT record _mta-sts\\.p5\\.test "v=STSv1; id=${shown.domain.policyId}" by DNS UPDATE failed \\(TSIG_BADKEY\\)`,
      ),
    );
    assert.match(
      set.stdout,
      new RegExp(`_mta-sts\\.p5\\.test\\.\\tTXT\\t"v=STSv1; id=${shown.domain.policyId}"`),
    );
    assert.deepEqual(await lab.authoritativeRRset('_mta-sts.p5.test', 'TXT'), ['"v=STSv1; id=1"']);
  });

  it('a key file that is not one: exit 2 before anything is stored', () => {
    const broken = join(dir, 'broken.key');
    writeFileSync(broken, 'not a key\n');
    const res = runCli([
      ...['domain', 'set', 'p5.test', '--max-age', '3600', '--data-dir', dataDir()],
      ...['--dns-server', server(), '--tsig-key', broken, ...network()],
    ]);
    assert.equal(res.code, 2, res.stderr);
    assert.match(res.stderr, /--tsig-key: .*broken\.key/);
    const shown = JSON.parse(runCli(['domain', 'show', 'p5.test', '--json', '--data-dir', dataDir()]).stdout);
    assert.equal(shown.domain.maxAge, 86400);
  });
});
