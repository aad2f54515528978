// RFC 7208 check_host() (src/spf/evaluate.ts) over zones held in memory (a pure unit test: DNS is handed in):
// mechanisms left to right with their qualifiers, include: (§5.2) and redirect= (§6.1) with their result
// mapping, a/mx/exists with CIDR lengths, the processing limits of §4.6.4 (10 DNS-querying terms, 2 void
// lookups, 10 MX names), DNS failures as temperror, terms that need the sender not matching, the evaluator's
// own bound on names asked, and each name asked once however many addresses are judged.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type SpfDns, type SpfDnsAnswer, SpfEvaluator } from '../../src/spf/evaluate.js';

type Zone = Record<string, string[] | 'error'>;

/** An SpfDns over `zone` ("TXT name", "A name", "AAAA name", "MX name" keys) that logs what it is asked. */
function zoneDns(zone: Zone): SpfDns & { asked: string[] } {
  const asked: string[] = [];
  const answer = (key: string): Promise<SpfDnsAnswer> => {
    asked.push(key);
    const found = zone[key];
    if (found === 'error') return Promise.resolve({ outcome: 'error' });
    return Promise.resolve(
      found && found.length > 0 ? { outcome: 'ok', values: found } : { outcome: 'void' },
    );
  };
  return {
    asked,
    txt: (name) => answer(`TXT ${name}`),
    a: (name) => answer(`A ${name}`),
    aaaa: (name) => answer(`AAAA ${name}`),
    mx: (name) => answer(`MX ${name}`),
  };
}

async function results(zone: Zone, domain: string, ips: string[]): Promise<string[]> {
  const evaluator = new SpfEvaluator(zoneDns(zone));
  return Promise.all(ips.map((ip) => evaluator.check(ip, domain)));
}

describe('check_host', () => {
  it('ip4/ip6 with CIDR lengths, qualifiers, and neutral when nothing matches', async () => {
    const zone = {
      'TXT example.com': ['v=spf1 ip4:192.0.2.0/24 -ip4:198.51.100.1 ~ip6:2001:db8::/32 ?ip4:203.0.113.9'],
    };
    assert.deepEqual(
      await results(zone, 'Example.COM.', [
        '192.0.2.77',
        '198.51.100.1',
        '2001:db8:1::5',
        '203.0.113.9',
        '203.0.113.10',
      ]),
      ['pass', 'fail', 'softfail', 'neutral', 'neutral'],
    );
  });

  it('none without a record, permerror with two or a broken one, temperror when DNS fails', async () => {
    assert.deepEqual(await results({ 'TXT a.example': ['not spf'] }, 'a.example', ['192.0.2.1']), ['none']);
    assert.deepEqual(await results({}, 'gone.example', ['192.0.2.1']), ['none']);
    assert.deepEqual(
      await results({ 'TXT two.example': ['v=spf1 -all', 'v=spf1 +all'] }, 'two.example', ['192.0.2.1']),
      ['permerror'],
    );
    assert.deepEqual(
      await results({ 'TXT bad.example': ['v=spf1 ip4:300.1.1.1 -all'] }, 'bad.example', ['192.0.2.1']),
      ['permerror'],
    );
    assert.deepEqual(await results({ 'TXT down.example': 'error' }, 'down.example', ['192.0.2.1']), [
      'temperror',
    ]);
  });

  it('a and mx: the domain’s or the named host’s addresses of the client’s family, with dual CIDR', async () => {
    const zone = {
      'TXT example.com': ['v=spf1 a mx:mail.example.net/24//64 a:other.example.org -all'],
      'A example.com': ['192.0.2.10'],
      'AAAA example.com': ['2001:db8::10'],
      'MX mail.example.net': ['mx1.example.net', 'mx2.example.net'],
      'A mx1.example.net': ['198.51.100.25'],
      'AAAA mx2.example.net': ['2001:db8:5::25'],
      'A other.example.org': ['203.0.113.5'],
    };
    assert.deepEqual(
      await results(zone, 'example.com', [
        '192.0.2.10',
        '2001:db8::10',
        '198.51.100.200',
        '2001:db8:5::ffff',
        '203.0.113.5',
        '192.0.2.11',
      ]),
      ['pass', 'pass', 'pass', 'pass', 'pass', 'fail'],
    );
  });

  it('include: pass matches, fail does not; none and permerror inside end in permerror; temperror passes up', async () => {
    const zone = {
      'TXT example.com': ['v=spf1 include:_spf.esp.example include:_spf.other.example -all'],
      'TXT _spf.esp.example': ['v=spf1 ip4:192.0.2.0/28 -ip4:192.0.2.128/25 ~all'],
      'TXT _spf.other.example': ['v=spf1 ip6:2001:db8:9::/48 -all'],
      'TXT none.example': ['v=spf1 include:nothing.example -all'],
      'TXT down.example': ['v=spf1 include:dns-down.example -all'],
      'TXT dns-down.example': 'error',
    } as Zone;
    assert.deepEqual(
      await results(zone, 'example.com', ['192.0.2.5', '192.0.2.200', '2001:db8:9::1', '198.51.100.1']),
      ['pass', 'fail', 'pass', 'fail'],
    );
    assert.deepEqual(await results(zone, 'none.example', ['192.0.2.5']), ['permerror']);
    assert.deepEqual(await results(zone, 'down.example', ['192.0.2.5']), ['temperror']);
  });

  it('redirect=: the target’s result when no mechanism matched; none there is permerror; ignored after all', async () => {
    const zone = {
      'TXT example.com': ['v=spf1 ip4:192.0.2.1 redirect=_spf.example.net'],
      'TXT _spf.example.net': ['v=spf1 ip4:198.51.100.0/24 -all'],
      'TXT with-all.example': ['v=spf1 ?all redirect=_spf.example.net'],
      'TXT to-nothing.example': ['v=spf1 redirect=nothing.example'],
    };
    assert.deepEqual(await results(zone, 'example.com', ['192.0.2.1', '198.51.100.7', '203.0.113.1']), [
      'pass',
      'pass',
      'fail',
    ]);
    assert.deepEqual(await results(zone, 'with-all.example', ['198.51.100.7']), ['neutral']);
    assert.deepEqual(await results(zone, 'to-nothing.example', ['198.51.100.7']), ['permerror']);
  });

  it('exists: an A query, any answer matches', async () => {
    const zone = {
      'TXT example.com': ['v=spf1 exists:on.example.com -all'],
      'A on.example.com': ['127.0.0.2'],
      'TXT off.example': ['v=spf1 exists:off.example.com -all'],
    };
    assert.deepEqual(await results(zone, 'example.com', ['2001:db8::1']), ['pass']);
    assert.deepEqual(await results(zone, 'off.example', ['192.0.2.1']), ['fail']);
  });

  it('RFC 7208 §4.6.4: the 11th DNS-querying term, the 3rd void lookup and the 11th MX name lookup are permerror', async () => {
    const chain: Zone = {};
    for (let i = 0; i < 11; i++) chain[`TXT l${i}.example`] = [`v=spf1 include:l${i + 1}.example -all`];
    chain['TXT l11.example'] = ['v=spf1 ip4:192.0.2.1 -all'];
    assert.deepEqual(await results(chain, 'l0.example', ['192.0.2.1']), ['permerror']);
    // Ten lookups are still allowed: from l1, ten includes reach l11.
    assert.deepEqual(await results(chain, 'l1.example', ['192.0.2.1']), ['pass']);

    const voids = { 'TXT example.com': ['v=spf1 a:v1.example a:v2.example a:v3.example ip4:192.0.2.1 -all'] };
    assert.deepEqual(await results(voids, 'example.com', ['192.0.2.1']), ['permerror']);
    const twoVoids = { 'TXT example.com': ['v=spf1 a:v1.example a:v2.example ip4:192.0.2.1 -all'] };
    assert.deepEqual(await results(twoVoids, 'example.com', ['192.0.2.1']), ['pass']);

    // The 11th MX name's address lookup is the permerror; a match among the first ten ends the mx before it.
    const names = Array.from({ length: 11 }, (_, i) => `mx${i}.example.com`);
    const manyMx = {
      'TXT example.com': ['v=spf1 mx -all'],
      'MX example.com': names,
      'A mx0.example.com': ['192.0.2.1'],
      'A mx10.example.com': ['192.0.2.99'],
    };
    assert.deepEqual(await results(manyMx, 'example.com', ['192.0.2.1', '192.0.2.99', '192.0.2.50']), [
      'pass',
      'permerror',
      'permerror',
    ]);
    const tenMx = { ...manyMx, 'MX example.com': names.slice(0, 10) };
    assert.deepEqual(await results(tenMx, 'example.com', ['192.0.2.1', '192.0.2.50']), ['pass', 'fail']);
  });

  it('a record that includes itself ends at the lookup limit: permerror', async () => {
    const zone = { 'TXT loop.example': ['v=spf1 include:loop.example -all'] };
    assert.deepEqual(await results(zone, 'loop.example', ['192.0.2.1']), ['permerror']);
  });

  it('macros expand for the client and postmaster@domain (RFC 7208 §7); %{h}, %{p} and ptr never match', async () => {
    const zone = {
      'TXT example.com': [
        'v=spf1 exists:%{h}.helo.example ptr exists:%{p}.p.example exists:%{i}.%{d2}.allow.example include:%{ir}.%{v}.%{L}.esp.example -all',
      ],
      'A 192.0.2.1.example.com.allow.example': ['127.0.0.2'],
      'TXT 7.2.0.192.in-addr.postmaster.esp.example': ['v=spf1 ip4:192.0.2.0/24 -all'],
      [`TXT ${[...'20010db8000000000000000000000025'].reverse().join('.')}.ip6.postmaster.esp.example`]: [
        'v=spf1 ip6:2001:db8::/32 -all',
      ],
    };
    assert.deepEqual(
      await results(zone, 'example.com', ['192.0.2.1', '192.0.2.7', '2001:db8::25', '192.0.2.2']),
      // The last one's include target has no record: RFC 7208 §5.2, permerror.
      ['pass', 'pass', 'pass', 'permerror'],
    );
  });

  it('asks each name once for many addresses, and at most maxQueries names in all', async () => {
    const zone = {
      'TXT example.com': ['v=spf1 include:a.example include:b.example -all'],
      'TXT a.example': ['v=spf1 ip4:192.0.2.0/24 -all'],
      'TXT b.example': ['v=spf1 ip4:198.51.100.0/24 -all'],
    };
    const dns = zoneDns(zone);
    const evaluator = new SpfEvaluator(dns);
    const ips = Array.from({ length: 200 }, (_, i) => `198.51.100.${i % 250}`);
    const verdicts = await Promise.all(ips.map((ip) => evaluator.check(ip, 'example.com')));
    assert.ok(verdicts.every((v) => v === 'pass'));
    assert.deepEqual(dns.asked.sort(), ['TXT a.example', 'TXT b.example', 'TXT example.com']);

    const bounded = new SpfEvaluator(zoneDns(zone), 2);
    assert.equal(await bounded.check('198.51.100.1', 'example.com'), 'temperror');
  });

  it('an address that is not an IP is permerror', async () => {
    assert.deepEqual(await results({ 'TXT example.com': ['v=spf1 +all'] }, 'example.com', ['not-an-ip']), [
      'permerror',
    ]);
  });

  it('random record graphs (loops, fan-out, macros, broken records) always end in a result, within the bounds', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `n${i}.example`);
    const name = fc.constantFrom(...names);
    const term = fc.oneof(
      name.map((n) => `include:${n}`),
      name.map((n) => `a:${n}`),
      name.map((n) => `mx:${n}`),
      name.map((n) => `exists:%{i}.${n}`),
      fc.constantFrom('ip4:192.0.2.0/24', 'ip6:2001:db8::/32', '-all', '~all', 'ptr', 'ip4:300.0.0.1'),
    );
    const record = fc
      .tuple(fc.array(term, { maxLength: 6 }), fc.option(name))
      .map(([terms, redirect]) => `v=spf1 ${terms.join(' ')}${redirect ? ` redirect=${redirect}` : ''}`);
    const zone = fc.dictionary(
      fc.oneof(
        name.map((n) => `TXT ${n}`),
        name.map((n) => `A ${n}`),
        name.map((n) => `MX ${n}`),
      ),
      fc.oneof(
        record.map((r) => [r]),
        fc.constant<string[]>(['192.0.2.9']),
        fc.constant(names.slice(0, 11)),
      ),
    );
    await fc.assert(
      fc.asyncProperty(zone, fc.constantFrom('192.0.2.9', '2001:db8::9', '198.51.100.1'), async (z, ip) => {
        const dns = zoneDns(z);
        const result = await new SpfEvaluator(dns, 30).check(ip, 'n0.example');
        assert.ok(['pass', 'fail', 'softfail', 'neutral', 'none', 'permerror', 'temperror'].includes(result));
        assert.ok(dns.asked.length <= 30, `${dns.asked.length} names asked`);
      }),
      { numRuns: 300 },
    );
  });
});
