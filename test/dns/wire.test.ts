// The client's message handling without sockets: the query it sends, which replies it accepts,
// how a reply reads (RCODE, AD, CNAME chain, EDE), and the typed lookups over a fake resolver.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import dnsPacket, { type OptAnswer, type Packet, type PacketOpt } from 'dns-packet';
import fc from 'fast-check';
import {
  type DnsRecord,
  type DnsRecordType,
  type DnsResult,
  type ExtendedDnsError,
  joinTxt,
  ResolverBase,
} from '../../src/dns/resolver.js';
import {
  type DnsMessage,
  decodeMessage,
  ednsOpt,
  encodeQuery,
  extendedErrors,
  followCnames,
  MAX_CNAME_CHAIN,
  type QuerySpec,
  readReply,
  replyMatches,
} from '../../src/dns/wire.js';

const SPEC: QuerySpec = { id: 777, name: 'mx.example.test', type: 'TLSA' };

function message(packet: Packet): DnsMessage {
  return dnsPacket.decode(dnsPacket.encode(packet)) as DnsMessage;
}

function reply(overrides: Partial<Packet> = {}): DnsMessage {
  return message({
    type: 'response',
    id: 777,
    flags: 0,
    questions: [{ name: 'mx.example.test', type: 'TLSA' }],
    ...overrides,
  });
}

function edeOption(code: number, text: Buffer | string = Buffer.alloc(0)): PacketOpt {
  const extra = typeof text === 'string' ? Buffer.from(text) : text;
  const data = Buffer.alloc(2 + extra.length);
  data.writeUInt16BE(code, 0);
  extra.copy(data, 2);
  return { code: 15, data } as unknown as PacketOpt;
}

describe('encodeQuery', () => {
  it('asks with RD and AD, EDNS0 payload 1232 and DO; CD only when asked', () => {
    const plain = dnsPacket.decode(encodeQuery(SPEC));
    assert.equal(plain.id, 777);
    assert.equal(plain.flag_rd, true);
    assert.equal(plain.flag_ad, true);
    assert.equal(plain.flag_cd, false);
    assert.deepEqual(plain.questions, [{ name: 'mx.example.test', type: 'TLSA', class: 'IN' }]);
    const opt = plain.additionals?.find((a): a is OptAnswer => a.type === 'OPT');
    assert.equal(opt?.udpPayloadSize, 1232);
    assert.equal(opt?.flag_do, true);
    assert.equal(dnsPacket.decode(encodeQuery({ ...SPEC, cd: true })).flag_cd, true);
  });

  it('encodes the root name', () => {
    const q = dnsPacket.decode(encodeQuery({ id: 1, name: '.', type: 'DNSKEY' }));
    assert.equal(q.questions?.[0]?.name, '.');
  });
});

describe('decodeMessage', () => {
  it('returns undefined for short or malformed input', () => {
    assert.equal(decodeMessage(Buffer.alloc(0)), undefined);
    assert.equal(decodeMessage(Buffer.alloc(11)), undefined);
    assert.equal(decodeMessage(Buffer.from('000181000001000000000000', 'hex')), undefined);
  });

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const m = decodeMessage(Buffer.from(bytes));
        assert.ok(m === undefined || typeof m.id === 'number');
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on a real reply with random bytes flipped', () => {
    const good = dnsPacket.encode({
      type: 'response',
      id: 1,
      questions: [{ name: 'example.test', type: 'MX' }],
      answers: [
        { name: 'example.test', type: 'MX', ttl: 60, data: { preference: 10, exchange: 'mx.example.test' } },
      ],
      additionals: [ednsOpt(false, [edeOption(6, 'x')])],
    });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        (flips) => {
          const bytes = Buffer.from(good);
          for (const [at, value] of flips) bytes[at] = value;
          const m = decodeMessage(bytes);
          if (m !== undefined) {
            replyMatches(m, SPEC);
            readReply(m, 'example.test', 'MX');
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('replyMatches (RFC 5452 §9.1)', () => {
  const accepted: Array<[string, DnsMessage]> = [
    ['same id and question', reply()],
    [
      'question in another case, with a trailing dot',
      reply({ questions: [{ name: 'MX.Example.TEST.', type: 'TLSA' }] }),
    ],
  ];
  const rejected: Array<[string, DnsMessage]> = [
    ['another id', reply({ id: 778 })],
    [
      'a query, not a response',
      message({ type: 'query', id: 777, questions: [{ name: 'mx.example.test', type: 'TLSA' }] }),
    ],
    ['another name', reply({ questions: [{ name: 'mx2.example.test', type: 'TLSA' }] })],
    ['another type', reply({ questions: [{ name: 'mx.example.test', type: 'A' }] })],
    ['another class', reply({ questions: [{ name: 'mx.example.test', type: 'TLSA', class: 'CH' }] })],
    ['no question', reply({ questions: [] })],
    [
      'two questions',
      reply({
        questions: [
          { name: 'mx.example.test', type: 'TLSA' },
          { name: 'mx.example.test', type: 'TLSA' },
        ],
      }),
    ],
  ];
  for (const [why, m] of accepted) it(`accepts ${why}`, () => assert.equal(replyMatches(m, SPEC), true));
  for (const [why, m] of rejected) it(`rejects ${why}`, () => assert.equal(replyMatches(m, SPEC), false));
});

describe('extendedErrors (RFC 8914)', () => {
  const cases: Array<[string, PacketOpt[], ExtendedDnsError[]]> = [
    ['none', [], []],
    ['code with text', [edeOption(6, 'DNSSEC Bogus')], [{ code: 6, text: 'DNSSEC Bogus' }]],
    ['code without text', [edeOption(9)], [{ code: 9 }]],
    ['NUL-terminated text', [edeOption(7, Buffer.from('expired\0'))], [{ code: 7, text: 'expired' }]],
    ['only NULs', [edeOption(7, Buffer.from('\0\0\0'))], [{ code: 7 }]],
    [
      'NULs inside the text are kept, trailing ones dropped',
      [edeOption(7, Buffer.from('a\0\0b\0\0'))],
      [{ code: 7, text: 'a\0\0b' }],
    ],
    ['several', [edeOption(9, 'a'), edeOption(10)], [{ code: 9, text: 'a' }, { code: 10 }]],
    ['too short to hold a code', [{ code: 15, data: Buffer.from([1]) } as unknown as PacketOpt], []],
    ['other options only', [{ code: 12, data: Buffer.alloc(4) } as unknown as PacketOpt], []],
  ];
  for (const [why, options, expected] of cases) {
    it(why, () =>
      assert.deepEqual(extendedErrors(reply({ additionals: [ednsOpt(false, options)] })), expected),
    );
  }
});

describe('followCnames', () => {
  const a = (name: string, data: string): DnsRecord => ({ name, type: 'A', data });
  const cname = (name: string, data: string): DnsRecord => ({ name, type: 'CNAME', data });

  it('follows the chain in any order and case', () => {
    const records = [a('C.test', '127.0.0.1'), cname('b.test', 'c.test.'), cname('a.test', 'B.test')];
    const r = followCnames(records, 'a.test', 'A');
    assert.deepEqual(r.cnameChain, ['b.test', 'c.test']);
    assert.deepEqual(r.answers, [records[0]]);
    assert.equal(r.problem, undefined);
  });

  it('does not follow for a CNAME question', () => {
    const r = followCnames([cname('a.test', 'b.test'), a('b.test', '127.0.0.1')], 'a.test', 'CNAME');
    assert.equal(r.answers.length, 1);
    assert.deepEqual(r.cnameChain, []);
  });

  it('ignores records for other names (no answers smuggled in)', () => {
    const r = followCnames([a('evil.test', '127.0.0.66')], 'a.test', 'A');
    assert.deepEqual(r.answers, []);
  });

  it('reports loops and overlong chains', () => {
    assert.match(followCnames([cname('a.test', 'a.test')], 'a.test', 'A').problem ?? '', /loop/);
    assert.match(
      followCnames([cname('a.test', 'b.test'), cname('b.test', 'a.test')], 'a.test', 'A').problem ?? '',
      /loop/,
    );
    const long = Array.from({ length: MAX_CNAME_CHAIN + 2 }, (_, i) => cname(`n${i}.test`, `n${i + 1}.test`));
    assert.match(followCnames(long, 'n0.test', 'A').problem ?? '', /longer than/);
    const fits = Array.from({ length: MAX_CNAME_CHAIN }, (_, i) => cname(`n${i}.test`, `n${i + 1}.test`));
    assert.equal(followCnames(fits, 'n0.test', 'A').problem, undefined);
  });
});

describe('readReply', () => {
  const RCODE_FLAGS: Record<string, number> = {
    NOERROR: 0,
    FORMERR: 1,
    SERVFAIL: 2,
    NXDOMAIN: 3,
    NOTIMP: 4,
    REFUSED: 5,
  };
  const answer = {
    name: 'mx.example.test',
    type: 'TLSA' as const,
    ttl: 60,
    data: { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.alloc(32) },
  };
  const cases: Array<[string, boolean, string]> = [
    ['NOERROR', true, 'ok'],
    ['NOERROR', false, 'nodata'],
    ['NXDOMAIN', false, 'nxdomain'],
    ['SERVFAIL', false, 'servfail'],
    ['REFUSED', false, 'refused'],
    ['FORMERR', false, 'error'],
    ['NOTIMP', false, 'error'],
  ];
  for (const [rcode, withAnswer, outcome] of cases) {
    it(`${rcode}${withAnswer ? ' with an answer' : ''} is ${outcome}`, () => {
      const r = readReply(
        reply({ flags: RCODE_FLAGS[rcode], answers: withAnswer ? [answer] : [] }),
        SPEC.name,
        'TLSA',
      );
      assert.equal(r.outcome, outcome);
      assert.equal(r.rcode, rcode);
      if (outcome === 'error') assert.match(r.error ?? '', new RegExp(rcode));
    });
  }

  it('secure is the AD flag', () => {
    assert.equal(readReply(reply({ flags: dnsPacket.AUTHENTIC_DATA }), SPEC.name, 'TLSA').secure, true);
    assert.equal(readReply(reply(), SPEC.name, 'TLSA').secure, false);
  });

  it('leaves RRSIGs out of the answers', () => {
    const rrsig = {
      name: 'mx.example.test',
      type: 'RRSIG' as const,
      ttl: 60,
      data: {
        typeCovered: 'TLSA',
        algorithm: 13,
        labels: 3,
        originalTTL: 60,
        expiration: 2000000000,
        inception: 1000000000,
        keyTag: 1,
        signersName: 'example.test',
        signature: Buffer.alloc(64),
      },
    };
    const r = readReply(reply({ answers: [answer, rrsig] }), SPEC.name, 'TLSA');
    assert.deepEqual(
      r.answers.map((x) => x.type),
      ['TLSA'],
    );
  });
});

/** A resolver that answers from a table: the typed lookups and DNSSEC helpers on top of it. */
class FakeResolver extends ResolverBase {
  readonly asked: Array<{ name: string; type: DnsRecordType; cd: boolean }> = [];
  constructor(
    private readonly answer: (name: string, type: DnsRecordType, cd: boolean) => Partial<DnsResult>,
  ) {
    super();
  }
  async query(name: string, type: DnsRecordType, options: { cd?: boolean } = {}): Promise<DnsResult> {
    this.asked.push({ name, type, cd: options.cd === true });
    return {
      name,
      type,
      outcome: 'ok',
      secure: false,
      answers: [],
      cnameChain: [],
      ede: [],
      ...this.answer(name, type, options.cd === true),
    };
  }
}

describe('typed lookups over any resolver', () => {
  it('txt accepts strings and buffers and joins each record', async () => {
    const fake = new FakeResolver(() => ({
      answers: [
        { name: 'x.test', type: 'TXT', data: [Buffer.from('v=STSv1; '), Buffer.from('id=1')] },
        { name: 'x.test', type: 'TXT', data: 'single' },
        { name: 'x.test', type: 'TXT', data: Buffer.from('') },
      ],
    }));
    assert.deepEqual((await fake.txt('x.test')).values, ['v=STSv1; id=1', 'single', '']);
  });

  it('joinTxt is concatenation (RFC 7208 §3.3)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 40 }), { minLength: 1, maxLength: 6 }), (parts) => {
        assert.equal(joinTxt(parts), parts.join(''));
        assert.equal(joinTxt(parts.map((p) => Buffer.from(p))), parts.join(''));
      }),
    );
  });

  it('mx orders equal preferences by name and treats a lone "0 ." as null MX', async () => {
    const mx = (preference: number, exchange: string): DnsRecord => ({
      name: 'x.test',
      type: 'MX',
      data: { preference, exchange },
    });
    const sorted = new FakeResolver(() => ({
      answers: [mx(10, 'b.test'), mx(5, 'z.test'), mx(10, 'a.test')],
    }));
    assert.deepEqual(
      (await sorted.mx('x.test')).values.map((v) => `${v.preference} ${v.exchange}`),
      ['5 z.test', '10 a.test', '10 b.test'],
    );
    assert.equal((await new FakeResolver(() => ({ answers: [mx(0, '.')] })).mx('x.test')).nullMx, true);
    assert.equal((await new FakeResolver(() => ({ answers: [] })).mx('x.test')).nullMx, false);
  });

  it('a lookup passes outcome and secure through', async () => {
    const fake = new FakeResolver(() => ({ outcome: 'nxdomain', secure: true }));
    const r = await fake.a('x.test');
    assert.equal(r.outcome, 'nxdomain');
    assert.equal(r.secure, true);
    assert.deepEqual(r.values, []);
  });
});

describe('classifyFailure and checkValidating over any resolver', () => {
  const servfail = (ede: ExtendedDnsError[] = []): Partial<DnsResult> => ({
    outcome: 'servfail',
    rcode: 'SERVFAIL',
    ede,
  });
  const cases: Array<[string, (cd: boolean) => Partial<DnsResult>, string]> = [
    ['answered with CD', (cd) => (cd ? { outcome: 'ok' } : servfail()), 'bogus'],
    ['NXDOMAIN with CD', (cd) => (cd ? { outcome: 'nxdomain' } : servfail()), 'bogus'],
    ['EDE 9 DNSKEY Missing, CD fails too', () => servfail([{ code: 9 }]), 'bogus'],
    ['EDE 12 NSEC Missing', () => servfail([{ code: 12 }]), 'bogus'],
    ['EDE 1 Unsupported DNSKEY Algorithm', () => servfail([{ code: 1 }]), 'bogus'],
    ['EDE 3 Stale Answer is not about DNSSEC', () => servfail([{ code: 3 }]), 'servfail'],
    ['EDE 22 No Reachable Authority', () => servfail([{ code: 22 }]), 'servfail'],
    ['SERVFAIL with and without CD', () => servfail(), 'servfail'],
    ['timeout with CD', (cd) => (cd ? { outcome: 'timeout' } : servfail()), 'servfail'],
    ['no SERVFAIL', () => ({ outcome: 'nodata' }), 'not-servfail'],
  ];
  for (const [why, answer, verdict] of cases) {
    it(`${why}: ${verdict}`, async () => {
      const fake = new FakeResolver((_n, _t, cd) => answer(cd));
      const c = await fake.classifyFailure('x.test', 'TLSA');
      assert.equal(c.verdict, verdict);
      assert.deepEqual(
        fake.asked.map((q) => q.cd),
        verdict === 'not-servfail' ? [false] : [false, true],
      );
    });
  }

  it('checkValidating needs an answer with AD', async () => {
    assert.equal((await new FakeResolver(() => ({ secure: true })).checkValidating()).validating, true);
    assert.equal((await new FakeResolver(() => ({ secure: false })).checkValidating()).validating, false);
    const asked = new FakeResolver(() => ({ outcome: 'servfail', secure: true }));
    assert.equal((await asked.checkValidating()).validating, false);
    assert.deepEqual(asked.asked, [{ name: '.', type: 'DNSKEY', cd: false }]);
  });
});
