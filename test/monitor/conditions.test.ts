// Which findings are alert conditions, and how each is keyed (src/monitor/conditions.ts): one table row per
// rule of issue 12, good and bad.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ALERT_CODES, addressesOf, conditionsOf } from '../../src/monitor/conditions.js';
import type { StoredFinding } from '../../src/store/monitor-types.js';

const f = (
  code: string,
  status: string,
  message: string,
  extra: Partial<StoredFinding> = {},
): StoredFinding => ({ section: extra.section ?? 'tls', status, code, message, ...extra });

const keys = (findings: StoredFinding[]) =>
  conditionsOf(findings).map((c) => `${c.code} ${c.subject} ${c.severity}`);

describe('conditionsOf', () => {
  const rows: Array<{ name: string; findings: StoredFinding[]; want: string[] }> = [
    {
      name: 'a TLSA mismatch is one condition per MX address, with the fix',
      findings: [
        f('DANE_TLSA_MISMATCH', 'fail', '127.0.0.1, ::1: no usable TLSA record matches', {
          section: 'dane',
          host: 'mx.a.test',
          fix: '_25._tcp.mx.a.test. IN TLSA 3 1 1 ab',
        }),
      ],
      want: ['DANE_TLSA_MISMATCH mx.a.test/127.0.0.1 fail', 'DANE_TLSA_MISMATCH mx.a.test/::1 fail'],
    },
    {
      name: 'a match, a valid certificate and STARTTLS are no condition',
      findings: [
        f('DANE_TLSA_MATCH', 'pass', '127.0.0.1: 3 1 1 ab matches', { section: 'dane', host: 'mx.a.test' }),
        f('TLS_STARTTLS', 'pass', '127.0.0.1: STARTTLS offered', { host: 'mx.a.test' }),
        f('TLS_CERT_VALID', 'pass', '127.0.0.1: valid', { host: 'mx.a.test' }),
      ],
      want: [],
    },
    {
      name: 'rollover not ready alone is no condition (no certificate change near)',
      findings: [
        f(
          'DANE_ROLLOVER_NOT_READY',
          'warn',
          '127.0.0.1: every usable TLSA record is tied to the current key',
          {
            section: 'dane',
            host: 'mx.a.test',
          },
        ),
      ],
      want: [],
    },
    {
      name: 'rollover not ready with the certificate of that address expiring soon is one',
      findings: [
        f('TLS_CERT_EXPIRING', 'warn', '127.0.0.1: expires in 20 days', { host: 'mx.a.test' }),
        f('DANE_CURRENT_KEY_ONLY', 'warn', '127.0.0.1, 127.0.0.2: every matching TLSA record is tied', {
          section: 'dane',
          host: 'mx.a.test',
        }),
      ],
      want: ['TLS_CERT_EXPIRING mx.a.test/127.0.0.1 warn', 'DANE_CURRENT_KEY_ONLY mx.a.test/127.0.0.1 warn'],
    },
    {
      name: 'expired and invalid MX certificates, per address',
      findings: [
        f('TLS_CERT_EXPIRED', 'fail', '127.0.0.1: expired', { host: 'mx.a.test' }),
        f('TLS_CERT_UNTRUSTED', 'warn', '127.0.0.2: does not verify', { host: 'mx.a.test' }),
        f('TLS_CERT_NAME_MISMATCH', 'fail', '127.0.0.3: does not name', { host: 'mx.b.test' }),
      ],
      want: [
        'TLS_CERT_EXPIRED mx.a.test/127.0.0.1 fail',
        'TLS_CERT_UNTRUSTED mx.a.test/127.0.0.2 warn',
        'TLS_CERT_NAME_MISMATCH mx.b.test/127.0.0.3 fail',
      ],
    },
    {
      name: 'STARTTLS gone or refused',
      findings: [
        f('TLS_NO_STARTTLS', 'warn', '127.0.0.1: no STARTTLS; mail arrives in plain text', {
          host: 'mx.a.test',
        }),
        f('TLS_STARTTLS_REFUSED', 'fail', '127.0.0.2: 454 no', { host: 'mx.a.test' }),
      ],
      want: ['TLS_NO_STARTTLS mx.a.test/127.0.0.1 warn', 'TLS_STARTTLS_REFUSED mx.a.test/127.0.0.2 fail'],
    },
    {
      name: 'an MX that does not answer is not an alert (the monitoring host may be the one cut off)',
      findings: [
        f('TLS_CONNECT_FAILED', 'fail', '127.0.0.1: refused', { host: 'mx.a.test' }),
        f('TLS_TIMEOUT', 'fail', '127.0.0.1: timed out', { host: 'mx.a.test' }),
      ],
      want: [],
    },
    {
      name: 'MTA-STS: MX not covered per host, the policy host per host, the TXT record per domain',
      findings: [
        f('MTASTS_MX_NOT_COVERED', 'fail', 'MX host mx2.a.test matches no mx pattern', {
          section: 'mtasts',
          host: 'mx2.a.test',
        }),
        f('MTASTS_FETCH_CONNECT', 'fail', 'no connection', { section: 'mtasts', host: 'mta-sts.a.test' }),
        f('MTASTS_TXT_SYNTAX', 'fail', 'invalid', { section: 'mtasts' }),
        f('MTASTS_ID_UNCHANGED', 'warn', 'changed, id kept', { section: 'mtasts' }),
        f('MTASTS_CERT_EXPIRING', 'warn', 'expires in 18 day(s)', {
          section: 'mtasts',
          host: 'mta-sts.a.test',
        }),
      ],
      want: [
        'MTASTS_MX_NOT_COVERED mx2.a.test fail',
        'MTASTS_FETCH_CONNECT mta-sts.a.test fail',
        'MTASTS_TXT_SYNTAX  fail',
        'MTASTS_ID_UNCHANGED  warn',
        'MTASTS_CERT_EXPIRING mta-sts.a.test warn',
      ],
    },
    {
      name: 'advice is not an alert',
      findings: [
        f('MTASTS_MODE_TESTING', 'warn', 'mode testing', { section: 'mtasts' }),
        f('MTASTS_MAX_AGE_UNDER_WEEK', 'warn', 'short', { section: 'mtasts' }),
        f('SPF_SOFTFAIL', 'warn', '~all', { section: 'spf' }),
      ],
      want: [],
    },
    {
      name: 'DNSSEC bogus for the domain, an MX host and a TLSA RRset',
      findings: [
        f('MX_DNSSEC_BOGUS', 'fail', 'bogus', { section: 'mx' }),
        f('MX_HOST_DNSSEC_BOGUS', 'fail', 'bogus', { section: 'mx', host: 'mx.a.test' }),
        f('DANE_TLSA_BOGUS', 'fail', 'bogus', { section: 'dane', host: 'mx.b.test' }),
      ],
      want: [
        'MX_DNSSEC_BOGUS  fail',
        'MX_HOST_DNSSEC_BOGUS mx.a.test fail',
        'DANE_TLSA_BOGUS mx.b.test fail',
      ],
    },
    {
      name: "the monitor's own findings",
      findings: [
        f('MTASTS_ID_NOT_CURRENT', 'warn', 'old id', { section: 'monitor' }),
        f('TLSRPT_FAILURE_RATE', 'warn', '5 %', { section: 'monitor' }),
        f('TLSRPT_NEW_RESULT_TYPE', 'warn', 'first', {
          section: 'monitor',
          host: 'certificate-host-mismatch',
        }),
      ],
      want: [
        'MTASTS_ID_NOT_CURRENT  warn',
        'TLSRPT_FAILURE_RATE  warn',
        'TLSRPT_NEW_RESULT_TYPE certificate-host-mismatch warn',
      ],
    },
    {
      name: 'a listed code with a pass or info status is no condition',
      findings: [f('MTASTS_MX_NOT_COVERED', 'info', 'x', { section: 'mtasts', host: 'mx.a.test' })],
      want: [],
    },
  ];
  for (const row of rows) {
    it(row.name, () => assert.deepEqual(keys(row.findings), row.want));
  }

  it('the alert of one address names the host and that address only, and keeps the fix', () => {
    const [c] = conditionsOf([
      f('DANE_TLSA_MISMATCH', 'fail', '127.0.0.1, ::1: no usable TLSA record matches', {
        section: 'dane',
        host: 'mx.a.test',
        fix: '_25._tcp.mx.a.test. IN TLSA 3 1 1 ab',
      }),
    ]);
    assert.equal(c?.message, 'mx.a.test (127.0.0.1): no usable TLSA record matches');
    assert.equal(c?.fix, '_25._tcp.mx.a.test. IN TLSA 3 1 1 ab');
  });

  it('every alert code is documented in docs/monitoring.md', async () => {
    const { readFileSync } = await import('node:fs');
    const doc = readFileSync(new URL('../../docs/monitoring.md', import.meta.url), 'utf8');
    for (const code of [...Object.keys(ALERT_CODES), 'DANE_ROLLOVER_NOT_READY', 'DANE_CURRENT_KEY_ONLY']) {
      assert.ok(doc.includes(`\`${code}\``), `${code} is not in docs/monitoring.md`);
    }
  });
});

describe('addressesOf', () => {
  it('reads the addresses transport.ts puts before a merged message', () => {
    assert.deepEqual(addressesOf('127.0.0.1, 2001:db8::1: text: more'), {
      addresses: ['127.0.0.1', '2001:db8::1'],
      text: 'text: more',
    });
  });
  it('a message without an address prefix has none', () => {
    assert.deepEqual(addressesOf('the certificate of mx.a.test: expired').addresses, []);
    assert.deepEqual(addressesOf('no colon at all').addresses, []);
  });
});
