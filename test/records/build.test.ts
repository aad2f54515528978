// src/records/build.ts: the record set a domain publishes, from typed input, and one RecordsError
// code per kind of bad input (with the field at fault, so CLI and API can name it their way).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildRecordSet, type RecordSetInput } from '../../src/records/build.js';
import { RecordsError, type RecordsErrorCode, type RecordsField } from '../../src/records/error.js';

const NOW = new Date('2026-03-04T05:06:07Z');
const BASE: RecordSetInput = {
  domain: 'example.com',
  mode: 'testing',
  maxAge: 604800,
  ttl: 3600,
  mx: ['mail.example.com'],
};

function values(set: ReturnType<typeof buildRecordSet>, name: string): string[] {
  return set.records.filter((r) => r.name === name).map((r) => `${r.type} ${r.value}`);
}

describe('buildRecordSet: typed input', () => {
  it('takes numbers as numbers: max_age in the policy, the TTL on every record', () => {
    const set = buildRecordSet(
      {
        ...BASE,
        maxAge: 86400,
        ttl: 300,
        spf: true,
        dmarc: { policy: 'none' },
        policyHostTargets: ['192.0.2.1'],
      },
      NOW,
    );
    assert.equal(set.policy.maxAge, 86400);
    assert.equal(set.policy.text, 'version: STSv1\nmode: testing\nmx: mail.example.com\nmax_age: 86400\n');
    assert.equal(set.records.length, 5);
    for (const r of set.records) assert.equal(r.ttl, 300, r.name);
  });

  it('accepts the RFC 8461 §3.2 bounds of max_age and the RFC 2181 §8 bounds of a TTL', () => {
    assert.equal(buildRecordSet({ ...BASE, maxAge: 0, ttl: 0 }, NOW).policy.maxAge, 0);
    const top = buildRecordSet({ ...BASE, maxAge: 31557600, ttl: 2147483647 }, NOW);
    assert.equal(top.policy.maxAge, 31557600);
    assert.equal(top.records[0]?.ttl, 2147483647);
  });

  it('normalises the domain and defaults the id (UTC time) and the TLS-RPT address', () => {
    const set = buildRecordSet({ ...BASE, domain: 'Example.COM.' }, NOW);
    assert.equal(set.domain, 'example.com');
    assert.deepEqual(values(set, '_mta-sts.example.com'), ['TXT v=STSv1; id=20260304050607']);
    assert.deepEqual(values(set, '_smtp._tls.example.com'), [
      'TXT v=TLSRPTv1; rua=mailto:tlsrpt@example.com',
    ]);
    assert.equal(set.policy.url, 'https://mta-sts.example.com/.well-known/mta-sts.txt');
    assert.ok(set.notes.some((n) => n.startsWith('mode testing')));
  });

  it('takes lists as lists: mx merged with the preset, rua, policy host addresses', () => {
    const set = buildRecordSet(
      {
        ...BASE,
        mode: 'enforce',
        preset: 'google-workspace',
        mx: ['MAIL.example.com', 'smtp.google.com'],
        id: 'abc123',
        rua: ['mailto:a@example.com', 'https://r.example.com/tlsrpt'],
        policyHostTargets: ['192.0.2.1', '2001:db8::1'],
      },
      NOW,
    );
    assert.deepEqual(set.policy.mx, [
      'smtp.google.com',
      'aspmx.l.google.com',
      '*.aspmx.l.google.com',
      'mail.example.com',
    ]);
    assert.deepEqual(values(set, '_mta-sts.example.com'), ['TXT v=STSv1; id=abc123']);
    assert.deepEqual(values(set, '_smtp._tls.example.com'), [
      'TXT v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.com/tlsrpt',
    ]);
    assert.deepEqual(values(set, 'mta-sts.example.com'), ['A 192.0.2.1', 'AAAA 2001:db8::1']);
    assert.ok(!set.notes.some((n) => n.startsWith('mode testing')));
  });

  it('a host-name target is one CNAME (RFC 1034 §3.6.2), written without the trailing dot', () => {
    const set = buildRecordSet({ ...BASE, policyHostTargets: ['Me.GitHub.io.'] }, NOW);
    assert.deepEqual(values(set, 'mta-sts.example.com'), ['CNAME me.github.io']);
  });

  it('SPF from the preset (true) or as given; DMARC with its policy and report address', () => {
    const fromPreset = buildRecordSet(
      { ...BASE, mx: [], preset: 'exchange-online', spf: true, dmarc: { policy: 'none' } },
      NOW,
    );
    assert.deepEqual(values(fromPreset, 'example.com'), [
      'TXT v=spf1 include:spf.protection.outlook.com ~all',
    ]);
    assert.deepEqual(values(fromPreset, '_dmarc.example.com'), [
      'TXT v=DMARC1; p=none; rua=mailto:dmarc@example.com',
    ]);
    const given = buildRecordSet(
      { ...BASE, spf: ' ip4:192.0.2.0/24 -all ', dmarc: { policy: 'reject', rua: 'mailto:d@example.net' } },
      NOW,
    );
    assert.deepEqual(values(given, 'example.com'), ['TXT v=spf1 ip4:192.0.2.0/24 -all']);
    assert.deepEqual(values(given, '_dmarc.example.com'), [
      'TXT v=DMARC1; p=reject; rua=mailto:d@example.net',
    ]);
    const neither = buildRecordSet(BASE, NOW);
    assert.deepEqual(values(neither, 'example.com'), []);
    assert.deepEqual(values(neither, '_dmarc.example.com'), []);
  });

  it('notes name input fields as the caller calls them (default: the field itself)', () => {
    const plain = buildRecordSet({ ...BASE, rua: undefined }, NOW).notes;
    assert.ok(
      plain.some((n) => n.endsWith('(policyHostTargets)')),
      plain.join('\n'),
    );
    assert.ok(
      plain.some((n) => n.endsWith('or set rua')),
      plain.join('\n'),
    );
    const named = buildRecordSet(BASE, NOW, (field) => `<${field}>`).notes;
    assert.ok(
      named.some((n) => n.endsWith('(<policyHostTargets>)')),
      named.join('\n'),
    );
  });

  it('mode none needs no MX host (RFC 8461 §8.3: withdrawing a policy)', () => {
    const set = buildRecordSet({ ...BASE, mode: 'none', mx: [] }, NOW);
    assert.equal(set.policy.text, 'version: STSv1\nmode: none\nmax_age: 604800\n');
  });
});

describe('buildRecordSet: one RecordsError code per bad input', () => {
  const cases: Array<[string, Partial<RecordSetInput>, RecordsErrorCode, RecordsField, RegExp]> = [
    ['a domain with "_"', { domain: 'exa_mple.com' }, 'RECORDS_DOMAIN', 'domain', /not a valid domain/],
    ['an empty domain', { domain: '' }, 'RECORDS_DOMAIN', 'domain', /not a valid domain/],
    [
      'a domain whose mta-sts.<domain> passes 253 characters (RFC 8461 §3.3)',
      { domain: `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.com` },
      'RECORDS_DOMAIN',
      'domain',
      /too long for its policy host mta-sts\./,
    ],
    ['an unknown preset', { preset: 'nope' }, 'RECORDS_PRESET', 'preset', /unknown preset "nope"/],
    ['an unknown mode', { mode: 'strict' as 'none' }, 'RECORDS_MODE', 'mode', /got "strict"/],
    ['max_age above a year', { maxAge: 31557601 }, 'RECORDS_MAX_AGE', 'maxAge', /between 0 and 31557600/],
    ['a negative max_age', { maxAge: -1 }, 'RECORDS_MAX_AGE', 'maxAge', /between 0/],
    ['a fractional max_age', { maxAge: 1.5 }, 'RECORDS_MAX_AGE', 'maxAge', /whole number/],
    ['a NaN max_age', { maxAge: Number.NaN }, 'RECORDS_MAX_AGE', 'maxAge', /whole number/],
    ['a TTL above 2^31-1', { ttl: 2147483648 }, 'RECORDS_TTL', 'ttl', /between 0 and 2147483647/],
    ['a negative TTL', { ttl: -5 }, 'RECORDS_TTL', 'ttl', /between 0/],
    ['no MX host', { mx: [] }, 'RECORDS_NO_MX', 'mx', /at least one MX host/],
    ['a bad MX pattern', { mx: ['mail..example.com'] }, 'RECORDS_MX', 'mx', /empty label/],
    ['*.mx.microsoft', { mx: ['*.mx.microsoft'] }, 'RECORDS_MX', 'mx', /one label only/],
    ['an id with a dash', { id: 'has-dash' }, 'RECORDS_ID', 'id', /has-dash/],
    ['an http: rua', { rua: ['http://x.example/'] }, 'RECORDS_RUA', 'rua', /http:\/\/x\.example/],
    [
      'a CNAME beside an address',
      { policyHostTargets: ['host.example.net', '192.0.2.1'] },
      'RECORDS_POLICY_HOST',
      'policyHostTargets',
      /CNAME target must be the only target/,
    ],
    [
      'a target that is neither',
      { policyHostTargets: ['not_a_host!'] },
      'RECORDS_POLICY_HOST',
      'policyHostTargets',
      /not an IP address or host name/,
    ],
    ['a bad SPF mechanism', { spf: 'ip4:192.0.2.256 -all' }, 'RECORDS_SPF', 'spf', /192\.0\.2\.256/],
    ['an unknown DMARC p=', { dmarc: { policy: 'drop' } }, 'RECORDS_DMARC', 'dmarc', /p=drop/],
  ];
  for (const [name, change, code, field, detail] of cases) {
    it(`${name}: ${code}`, () => {
      assert.throws(
        () => buildRecordSet({ ...BASE, ...change }, NOW),
        (err: unknown) => {
          assert.ok(err instanceof RecordsError, String(err));
          assert.equal(err.code, code);
          assert.equal(err.field, field);
          assert.match(err.detail, detail);
          assert.ok(err.message.startsWith(`${field}`), err.message);
          return true;
        },
      );
    });
  }

  it('names the list item at fault, so a caller can say which one', () => {
    try {
      buildRecordSet({ ...BASE, mx: ['mail.example.com', 'mx_1.example.com'] }, NOW);
      assert.fail('no error');
    } catch (err) {
      assert.ok(err instanceof RecordsError);
      assert.equal(err.value, 'mx_1.example.com');
      assert.equal(err.message, `mx mx_1.example.com: ${err.detail}`);
      assert.equal(err.describe('--mx'), `--mx mx_1.example.com: ${err.detail}`);
    }
  });

  it('describe() leaves out an empty field name (the CLI names a bad domain by its value)', () => {
    try {
      buildRecordSet({ ...BASE, domain: 'exa mple.com' }, NOW);
      assert.fail('no error');
    } catch (err) {
      assert.ok(err instanceof RecordsError);
      assert.equal(err.describe(''), 'exa mple.com: not a valid domain name');
    }
  });
});
