// The sending-sources logic of the DMARC views (src/server/dmarc-sources.ts), pure parts: reverse DNS
// names (RFC 1035 §3.5, RFC 3596 §2.5), providers by name, the legitimacy of a source, the next step,
// and the background PTR queue's bounds (a fake resolver that holds its answers, an in-memory cache).
import assert from 'node:assert/strict';
import { BlockList } from 'node:net';
import { describe, test } from 'node:test';
import { parseDmarc } from '../../src/dmarc/record.js';
import type { DnsRecordType, DnsResult } from '../../src/dns/resolver.js';
import { ResolverBase } from '../../src/dns/resolver.js';
import {
  type Authorised,
  judgeSource,
  nextStep,
  PtrLookups,
  providerOf,
  reverseName,
} from '../../src/server/dmarc-sources.js';
import type { DmarcDailyCounts, DmarcSourceRow } from '../../src/store/dmarc-types.js';

test('reverse names of IPv4 and IPv6 addresses', () => {
  const table: [string, string | undefined][] = [
    ['192.0.2.1', '1.2.0.192.in-addr.arpa'],
    // RFC 3596 §2.5's own example.
    ['4321:0:1:2:3:4:567:89ab', 'b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa'],
    ['2001:db8::1', `1.${'0.'.repeat(23)}8.b.d.0.1.0.0.2.ip6.arpa`],
    ['::1', `1.${'0.'.repeat(31)}ip6.arpa`],
    ['::ffff:192.0.2.1', `1.0.2.0.0.0.0.c.f.f.f.f.${'0.'.repeat(20)}ip6.arpa`],
    ['not an ip', undefined],
    ['192.0.2.1.example', undefined],
  ];
  for (const [ip, name] of table) assert.equal(reverseName(ip), name, ip);
});

test('providers by reverse DNS name: the suffix itself or below it, nothing that only ends alike', () => {
  assert.equal(providerOf('mail-wr1-f54.google.com'), 'Google');
  assert.equal(providerOf('a8-1.smtp-out.amazonses.com.'), 'Amazon SES');
  assert.equal(providerOf('O1.Mail.SendGrid.NET'), 'SendGrid');
  assert.equal(providerOf('evilgoogle.com'), undefined);
  assert.equal(providerOf('google.com.evil.example'), undefined);
  assert.equal(providerOf(undefined), undefined);
});

/** `spfPass`: the source IPs the domain's SPF record passes (AuthorisedSenders evaluates them). */
function authorised(mx: string[], spfPass: string[]): Authorised {
  const a = { mx: new BlockList(), spfPass: new Set(spfPass) };
  for (const ip of mx) a.mx.addAddress(ip);
  return a;
}

const row = (sourceIp: string, messages: number, dmarcPass: number, ptr?: string): DmarcSourceRow => ({
  sourceIp,
  messages,
  spfAligned: dmarcPass,
  dkimAligned: dmarcPass,
  dmarcPass,
  headerFrom: ['example.com'],
  ...(ptr ? { ptr } : {}),
});

test('a source looks legitimate by own MX, then SPF, then provider, then alignment', () => {
  const a = authorised(['192.0.2.25'], ['198.51.100.200']);
  assert.equal(judgeSource(row('192.0.2.25', 10, 0), a).legitimacy, 'own-mx');
  assert.equal(judgeSource(row('198.51.100.200', 10, 0), a).legitimacy, 'spf-authorised');
  assert.equal(judgeSource(row('198.51.101.1', 10, 0), a).legitimacy, 'unknown');
  const provider = judgeSource(row('203.0.113.7', 10, 0, 'o1.mail.sendgrid.net'), a);
  assert.deepEqual([provider.legitimacy, provider.provider], ['known-provider', 'SendGrid']);
  assert.equal(judgeSource(row('203.0.113.8', 10, 6), a).legitimacy, 'aligned');
  assert.equal(judgeSource(row('203.0.113.8', 10, 5), a).legitimacy, 'unknown', 'half is not more than half');
});

const days = (n: number, from: string, counts: Partial<DmarcDailyCounts> = {}): DmarcDailyCounts[] =>
  Array.from({ length: n }, (_, i) => ({
    day: new Date(Date.parse(`${from}T00:00:00Z`) + i * 86_400_000).toISOString().slice(0, 10),
    pass: 10,
    fail: 0,
    quarantined: 0,
    rejected: 0,
    ...counts,
  }));

describe('the next step', () => {
  const a = authorised(['192.0.2.25'], []);
  const published = parseDmarc('v=DMARC1; p=none; rua=mailto:dmarc@example.com').record;

  test('no reports in the range', () => {
    const step = nextStep({ domain: 'example.com', daily: days(30, '2026-05-01', { pass: 0 }), sources: [] });
    assert.equal(step.code, 'NO_REPORTS');
  });

  test('a legitimate source failing comes first, naming it', () => {
    const step = nextStep({
      domain: 'example.com',
      daily: days(40, '2026-04-01'),
      sources: [judgeSource(row('192.0.2.25', 10, 7), a)],
      published,
    });
    assert.equal(step.code, 'FIX_SOURCES');
    assert.match(step.message, /192\.0\.2\.25/);
    assert.equal(step.record, undefined);
  });

  test('unknown sources failing (spoofing) do not hold back; fewer than 30 days of reports do', () => {
    const sources = [judgeSource(row('192.0.2.25', 10, 10), a), judgeSource(row('233.252.0.1', 50, 0), a)];
    const short = nextStep({ domain: 'example.com', daily: days(29, '2026-05-01'), sources, published });
    assert.equal(short.code, 'WAIT');
    const long = nextStep({ domain: 'example.com', daily: days(30, '2026-05-01'), sources, published });
    assert.equal(long.code, 'MOVE_TO_QUARANTINE');
    assert.deepEqual(long.record, {
      name: '_dmarc.example.com',
      type: 'TXT',
      value: 'v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com',
    });
  });

  test('from quarantine to reject; at reject nothing stricter; without a record the reported p=', () => {
    const sources = [judgeSource(row('192.0.2.25', 10, 10), a)];
    const daily = days(30, '2026-05-01');
    const quarantine = parseDmarc('v=DMARC1; p=quarantine; rua=mailto:d@example.com').record;
    const step = nextStep({ domain: 'example.com', daily, sources, published: quarantine });
    assert.equal(step.code, 'MOVE_TO_REJECT');
    assert.equal(step.record?.value, 'v=DMARC1; p=reject; rua=mailto:d@example.com');
    assert.equal(
      nextStep({ domain: 'example.com', daily, sources, reportedPolicy: 'reject' }).code,
      'AT_REJECT',
    );
    const bare = nextStep({ domain: 'example.com', daily, sources, reportedPolicy: 'none' });
    assert.equal(bare.record?.value, 'v=DMARC1; p=quarantine');
  });
});

/** Answers PTR queries only when the test releases them; counts how many are open at once. */
class HeldResolver extends ResolverBase {
  open = 0;
  most = 0;
  asked: string[] = [];
  private releases: Array<() => void> = [];
  constructor(private readonly answer: (name: string) => Partial<DnsResult>) {
    super();
  }
  async query(name: string, type: DnsRecordType): Promise<DnsResult> {
    this.asked.push(name);
    this.open++;
    this.most = Math.max(this.most, this.open);
    await new Promise<void>((resolve) => this.releases.push(resolve));
    this.open--;
    return {
      name,
      type,
      outcome: 'ok',
      secure: false,
      answers: [],
      cnameChain: [],
      ede: [],
      ...this.answer(name),
    };
  }
  releaseAll(): number {
    const n = this.releases.length;
    for (const r of this.releases.splice(0)) r();
    return n;
  }
}

function memoryPtrStore() {
  const names = new Map<string, { name: string; at: string }>();
  return {
    names,
    async getPtrNames(ips: string[]) {
      return new Map(ips.flatMap((ip) => (names.has(ip) ? [[ip, names.get(ip)!] as const] : [])));
    },
    async setPtrName(ip: string, name: string, now: Date) {
      names.set(ip, { name, at: now.toISOString() });
    },
  };
}

describe('background reverse DNS', () => {
  const ptr = (name: string, data: string): Partial<DnsResult> => ({
    answers: [{ name, type: 'PTR', class: 'IN', ttl: 300, data }],
  });

  test('at most `concurrency` lookups at once, at most `maxQueued` waiting, each address once', async () => {
    const resolver = new HeldResolver((name) => ptr(name, `host-${name.split('.')[0]}.example.net.`));
    const store = memoryPtrStore();
    const now = new Date('2026-05-10T00:00:00Z');
    const lookups = new PtrLookups(store, resolver, () => now, {
      concurrency: 2,
      maxQueued: 5,
      refreshMs: 86_400_000,
    });
    const ips = Array.from({ length: 20 }, (_, i) => `192.0.2.${i + 1}`);
    const first = await lookups.names([...ips, ...ips]);
    assert.equal(first.size, 0, 'nothing cached yet: the answer does not wait for DNS');
    const idle = lookups.idle();
    while (resolver.releaseAll() > 0) await new Promise((r) => setImmediate(r));
    await idle;
    assert.equal(resolver.most, 2);
    assert.equal(resolver.asked.length, 7, '2 running + 5 waiting; the rest are asked for by a later view');
    assert.equal(new Set(resolver.asked).size, 7);
    const second = await lookups.names(ips.slice(0, 5));
    assert.equal(second.get('192.0.2.3'), 'host-3.example.net');
  });

  test('no name is cached as "" and not asked again; a DNS failure is asked again', async () => {
    const resolver = new HeldResolver((name) =>
      name.startsWith('1.') ? { outcome: 'nxdomain' } : { outcome: 'timeout' },
    );
    const store = memoryPtrStore();
    const lookups = new PtrLookups(store, resolver, () => new Date('2026-05-10T00:00:00Z'));
    await lookups.names(['192.0.2.1', '192.0.2.2']);
    const idle = lookups.idle();
    while (resolver.releaseAll() > 0) await new Promise((r) => setImmediate(r));
    await idle;
    assert.deepEqual([...store.names.keys()], ['192.0.2.1']);
    assert.equal(store.names.get('192.0.2.1')?.name, '');
    resolver.asked = [];
    const names = await lookups.names(['192.0.2.1', '192.0.2.2']);
    assert.equal(names.size, 0);
    assert.deepEqual(resolver.asked, ['2.2.0.192.in-addr.arpa']);
    resolver.releaseAll();
    await lookups.idle();
  });
});
