// The domain part of the API: add / update / remove, the policy and its history, the DNS records
// to publish (the same as `mxguard records`), the policy fetch log.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { DnsClient } from '../../src/dns/client.js';
import { parseStsRecord, stsIdFromDate } from '../../src/mtasts/record.js';
import { openTestApp, type TestApp } from '../helpers/browser.js';
import { type LabDnsServer, startDnsServer } from '../lab/dns-server.js';

const START = new Date('2026-05-10T08:00:00Z');

describe('domains API', () => {
  let t: TestApp;
  let dns: LabDnsServer;
  let auth: { authorization: string };
  const get = (url: string) => t.app.inject({ url, headers: auth });
  const post = (url: string, payload: unknown) =>
    t.app.inject({ method: 'POST', url, headers: auth, payload: payload as object });
  const patch = (url: string, payload: unknown) =>
    t.app.inject({ method: 'PATCH', url, headers: auth, payload: payload as object });

  before(async () => {
    // What DNS publishes: example.com the id of its first policy, others.example two STS records,
    // parked.example nothing.
    const txt = (name: string, data: string) => ({ name, type: 'TXT' as const, data });
    dns = await startDnsServer([
      {
        origin: 'example.com',
        records: [txt('_mta-sts.example.com', `v=STSv1; id=${stsIdFromDate(START)}`)],
      },
      {
        origin: 'others.example',
        records: [
          txt('_mta-sts.others.example', 'v=STSv1; id=1'),
          txt('_mta-sts.others.example', 'v=STSv1; id=2'),
        ],
      },
      { origin: 'parked.example', records: [txt('parked.example', 'v=spf1 -all')] },
    ]);
    const resolver = new DnsClient({ servers: [{ host: dns.host, port: dns.port }], timeoutMs: 1000 });
    t = await openTestApp({ start: START, resolver });
    auth = { authorization: `Bearer ${t.password}` };
  });
  after(async () => {
    await t.close();
    await dns.stop();
  });

  test('adding a domain answers with the _mta-sts TXT value to publish', async () => {
    const res = await post('/api/domains', {
      name: 'Example.COM.',
      mx: ['mail.example.com', '*.backup.example.com'],
    });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json();
    assert.equal(body.domain.name, 'example.com');
    assert.equal(body.domain.mode, 'testing');
    assert.equal(body.domain.maxAge, 604800);
    assert.deepEqual(body.domain.rua, ['mailto:tlsrpt@example.com']);
    assert.equal(body.domain.policyId, stsIdFromDate(START));
    assert.equal(body.policyIdChanged, true);
    assert.deepEqual(body.publish, {
      name: '_mta-sts.example.com',
      type: 'TXT',
      value: `v=STSv1; id=${stsIdFromDate(START)}`,
    });
    assert.equal(parseStsRecord(body.publish.value).record.id, body.domain.policyId);
    assert.equal(
      body.domain.policyText,
      'version: STSv1\nmode: testing\nmx: mail.example.com\nmx: *.backup.example.com\nmax_age: 604800\n',
    );
    assert.match(body.message, /_mta-sts\.example\.com "v=STSv1; id=20260510080000"/);
  });

  test('adding it again is a conflict', async () => {
    const res = await post('/api/domains', { name: 'example.com', mx: ['mail.example.com'] });
    assert.equal(res.statusCode, 409);
    assert.match(res.json().message, /example\.com/);
  });

  test('invalid domains and settings are refused with a message naming the field', async () => {
    const bad: [unknown, RegExp][] = [
      [{}, /^name: /],
      [{ name: '' }, /^name: /],
      [{ name: 'bad..example', mx: ['mx.example'] }, /bad\.\.example/],
      [{ name: 'localhost', mx: ['mx.example'] }, /whole mail domain/],
      [{ name: 'a.example', mode: 'strict', mx: ['mx.example'] }, /^mode: /],
      [{ name: 'a.example', mx: ['mx.example'], maxAge: 31557601 }, /^maxAge: /],
      [{ name: 'a.example', mx: ['mx.example'], maxAge: -1 }, /^maxAge: /],
      [{ name: 'a.example', mx: ['mx.example'], maxAge: 1.5 }, /^maxAge: /],
      [{ name: 'a.example', mx: ['mx .example'] }, /mx/],
      [{ name: 'a.example', mx: ['*.*.example'] }, /wildcard/],
      [{ name: 'a.example', mode: 'enforce', mx: [] }, /mx: mode enforce needs at least one/],
      [{ name: 'a.example', mx: ['mx.example'], rua: [] }, /^rua: /],
      [{ name: 'a.example', mx: ['mx.example'], rua: ['ftp://x.example/'] }, /rua/],
      [{ name: 'a.example', mx: ['mx.example'], colour: 'red' }, /colour/],
      [{ name: 'a.example', mx: 'mx.example' }, /^mx: /],
      [[], /expected object/i],
    ];
    for (const [payload, message] of bad) {
      const res = await post('/api/domains', payload);
      assert.equal(res.statusCode, 400, `${JSON.stringify(payload)}: ${res.body}`);
      assert.match(res.json().message, message, JSON.stringify(payload));
    }
    assert.equal(await t.ctx.store.getDomain('a.example'), undefined);
  });

  test('mode none needs no mx', async () => {
    const res = await post('/api/domains', {
      name: 'parked.example',
      mode: 'none',
      rua: ['https://r.example/tlsrpt'],
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json().domain.rua, ['https://r.example/tlsrpt']);
  });

  test('the list shows every domain with its status', async () => {
    const res = await get('/api/domains');
    assert.equal(res.statusCode, 200);
    const { domains } = res.json();
    assert.deepEqual(
      domains.map((d: { name: string }) => d.name),
      ['example.com', 'parked.example'],
    );
    const example = domains[0];
    assert.equal(example.mode, 'testing');
    assert.equal(example.mtaStsRecord.value, `v=STSv1; id=${example.policyId}`);
    assert.deepEqual(example.last30Days, { successful: 0, failed: 0 });
    assert.equal(example.policyUrl, 'https://mta-sts.example.com/.well-known/mta-sts.txt');
  });

  test('the published _mta-sts id is looked up live and compared', async () => {
    const current = stsIdFromDate(START);
    const example = (await get('/api/domains/example.com')).json();
    assert.deepEqual(example.published, { published: current, current, matches: true });
    const parked = (await get('/api/domains/parked.example')).json();
    assert.equal(parked.published.matches, false);
    assert.equal(parked.published.published, undefined);
    assert.match(parked.published.error, /_mta-sts\.parked\.example: no TXT record/);
    const add = await post('/api/domains', { name: 'others.example', mx: ['mx.others.example'] });
    assert.equal(add.statusCode, 201);
    const others = (await get('/api/domains'))
      .json()
      .domains.find((d: { name: string }) => d.name === 'others.example');
    assert.equal(others.published.matches, false);
    assert.match(others.published.error, /2 "v=STSv1" records/);
    assert.equal(
      (await t.app.inject({ method: 'DELETE', url: '/api/domains/others.example', headers: auth }))
        .statusCode,
      204,
    );
  });

  test('a policy change bumps the id and shows the new TXT value', async () => {
    const before = (await get('/api/domains/example.com')).json();
    t.clock.advance(60);
    // No live check in this app: the pre-flight refuses (test/server/api-monitor.test.ts), force publishes.
    const refused = await patch('/api/domains/example.com', { mode: 'enforce' });
    assert.equal(refused.statusCode, 409, refused.body);
    assert.equal(refused.json().problems[0].code, 'PREFLIGHT_NOT_CHECKED');
    const res = await patch('/api/domains/example.com', { mode: 'enforce', force: true });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.policyIdChanged, true);
    assert.ok(body.domain.policyId > before.policyId);
    assert.equal(body.domain.policyId, stsIdFromDate(t.clock.now));
    assert.deepEqual(body.publish, body.domain.mtaStsRecord);
    assert.match(body.message, new RegExp(`id is now ${body.domain.policyId}`));
    assert.match(body.domain.policyText, /^mode: enforce$/m);
    const published = (await get('/api/domains/example.com')).json().published;
    assert.deepEqual(published, {
      published: before.policyId,
      current: body.domain.policyId,
      matches: false,
    });
  });

  test('a change that leaves the policy text alone keeps the id', async () => {
    const before = (await get('/api/domains/example.com')).json();
    t.clock.advance(60);
    const same = await patch('/api/domains/example.com', { mode: 'enforce' });
    assert.equal(same.json().policyIdChanged, false);
    assert.equal(same.json().publish, undefined);
    assert.equal(same.json().domain.policyId, before.policyId);
    const rua = await patch('/api/domains/example.com', { rua: ['mailto:reports@example.com'] });
    assert.equal(rua.statusCode, 200);
    assert.equal(rua.json().policyIdChanged, false);
    assert.match(rua.json().message, /_smtp\._tls\.example\.com/);
  });

  test('invalid updates', async () => {
    const bad: [string, unknown, number][] = [
      ['/api/domains/example.com', {}, 400],
      ['/api/domains/example.com', { mode: 'off' }, 400],
      ['/api/domains/example.com', { name: 'other.example' }, 400],
      ['/api/domains/example.com', { mode: 'enforce', mx: [] }, 400],
      ['/api/domains/unknown.example', { mode: 'enforce' }, 404],
    ];
    for (const [url, payload, status] of bad) {
      const res = await patch(url, payload);
      assert.equal(res.statusCode, status, `${url} ${JSON.stringify(payload)}: ${res.body}`);
    }
  });

  test('the policy and its history, newest first', async () => {
    t.clock.advance(60);
    await patch('/api/domains/example.com', { maxAge: 86400 });
    const res = await get('/api/domains/example.com/policy');
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(body.policyUrl, 'https://mta-sts.example.com/.well-known/mta-sts.txt');
    assert.equal(body.history.length, 3);
    assert.equal(body.history[0].policyId, body.policyId);
    assert.equal(body.history[0].policyText, body.policyText);
    assert.match(body.history[2].policyText, /mode: testing/);
    const ids = body.history.map((v: { policyId: string }) => v.policyId);
    assert.deepEqual(ids, [...ids].sort().reverse());
  });

  test('the records to publish: JSON, bind and PowerShell with the current id', async () => {
    const domain = (await get('/api/domains/example.com')).json();
    const res = await get('/api/domains/example.com/records');
    assert.equal(res.statusCode, 200, res.body);
    const set = res.json();
    const sts = set.records.find((r: { name: string }) => r.name === '_mta-sts.example.com');
    assert.equal(sts.value, `v=STSv1; id=${domain.policyId}`);
    const tls = set.records.find((r: { name: string }) => r.name === '_smtp._tls.example.com');
    assert.equal(tls.value, 'v=TLSRPTv1; rua=mailto:reports@example.com');
    assert.equal(set.policy.text, domain.policyText);
    assert.ok(set.notes.some((n: string) => n.includes('mta-sts.example.com')));
    // the notes name the API's parameter, not a command-line option
    assert.ok(
      set.notes.some((n: string) => n.includes('(policyHostTarget)')),
      set.notes.join('\n'),
    );
    assert.ok(!set.notes.some((n: string) => n.includes('--')), set.notes.join('\n'));
    assert.match(
      set.bind,
      new RegExp(`^_mta-sts\\.example\\.com\\.\\t3600\\tIN\\tTXT\\t"v=STSv1; id=${domain.policyId}"$`, 'm'),
    );
    assert.match(
      set.powershell,
      /^Add-DnsServerResourceRecord -ZoneName 'example.com' -Name '_mta-sts' .* -Txt -DescriptiveText 'v=STSv1; id=\d{14}'$/m,
    );

    const withHost = (
      await get('/api/domains/example.com/records?policyHostTarget=192.0.2.1,2001:db8::1&ttl=300')
    ).json();
    const hostRecords = withHost.records.filter((r: { name: string }) => r.name === 'mta-sts.example.com');
    assert.deepEqual(
      hostRecords.map((r: { type: string; value: string; ttl: number }) => [r.type, r.value, r.ttl]),
      [
        ['A', '192.0.2.1', 300],
        ['AAAA', '2001:db8::1', 300],
      ],
    );
    const bad = await get('/api/domains/example.com/records?policyHostTarget=not_a_host!');
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().message, /^policyHostTarget not_a_host!: not an IP address or host name/);
    assert.equal((await get('/api/domains/example.com/records?ttl=-5')).statusCode, 400);
    assert.equal((await get('/api/domains/nope.example/records')).statusCode, 404);
  });

  test('who fetches the policy', async () => {
    const fetches: [string, string][] = [
      ['203.0.113.5', 'Google-SMTP-STS'],
      ['203.0.113.6', 'Google-SMTP-STS'],
      ['203.0.113.7', 'Mozilla/5.0 (compatible; Microsoft Exchange)'],
      ['203.0.113.8', 'curl/8.5.0'],
      ['203.0.113.9', '<script>alert(1)</script>'],
    ];
    fetches.forEach(([clientIp, userAgent], i) => {
      t.ctx.store.logFetch({ at: `2026-05-10T09:00:0${i}.000Z`, domain: 'example.com', clientIp, userAgent });
    });
    const res = await get('/api/domains/example.com/fetches');
    assert.equal(res.statusCode, 200);
    const log = res.json();
    assert.equal(log.fetches.length, 5);
    assert.deepEqual(log.fetches[0], {
      at: '2026-05-10T09:00:04.000Z',
      clientIp: '203.0.113.9',
      userAgent: '<script>alert(1)</script>',
      client: 'other',
    });
    assert.deepEqual(
      log.clients.map((c: { client: string; count: number }) => [c.client, c.count]),
      [
        ['Google', 2],
        ['Microsoft', 1],
        ['command-line', 1],
        ['other', 1],
      ],
    );
    assert.equal(log.clients[0].lastAt, '2026-05-10T09:00:01.000Z');
    assert.equal((await get('/api/domains/example.com/fetches?limit=2')).json().fetches.length, 2);
    assert.equal((await get('/api/domains/example.com/fetches?limit=0')).statusCode, 400);
  });

  test('removing a domain', async () => {
    const del = (url: string) => t.app.inject({ method: 'DELETE', url, headers: auth });
    assert.equal((await del('/api/domains/parked.example')).statusCode, 204);
    assert.equal((await get('/api/domains/parked.example')).statusCode, 404);
    assert.equal((await del('/api/domains/parked.example')).statusCode, 404);
    for (const path of ['', '/policy', '/records', '/stats', '/fetches']) {
      assert.equal((await get(`/api/domains/parked.example${path}`)).statusCode, 404, path);
    }
  });

  test('fuzz: random bodies to POST /api/domains never cause a server error', async () => {
    const value = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.string(), { maxLength: 3 }),
    );
    const body = fc.oneof(
      fc.dictionary(fc.constantFrom('name', 'mx', 'mode', 'maxAge', 'rua', 'x'), value),
      fc.record({
        name: fc.domain(),
        mx: fc.array(fc.domain(), { maxLength: 3 }),
        mode: fc.constantFrom('testing', 'enforce', 'none'),
      }),
      fc.jsonValue(),
    );
    await fc.assert(
      fc.asyncProperty(body, async (payload) => {
        const res = await t.app.inject({
          method: 'POST',
          url: '/api/domains',
          headers: { ...auth, 'content-type': 'application/json' },
          payload: JSON.stringify(payload),
        });
        assert.ok([201, 400, 409].includes(res.statusCode), `${res.statusCode} ${res.body}`);
        assert.equal(typeof res.json().message === 'string' || res.statusCode === 201, true);
      }),
      { numRuns: 300 },
    );
  });
});
