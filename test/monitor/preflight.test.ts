// The pre-flight rule of an enforce policy (src/monitor/preflight.ts), row by row: which MX hosts of a
// check an enforce policy with these mx patterns would make senders refuse (RFC 8461 §4.1, §4.2).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CheckedDomain, preflightProblems } from '../../src/monitor/preflight.js';

const f = (
  section: string,
  code: string,
  host?: string,
  status = 'pass',
  message = 'text',
  fix?: string,
) => ({
  section,
  code,
  status,
  message,
  ...(host === undefined ? {} : { host }),
  ...(fix === undefined ? {} : { fix }),
});

const check = (...findings: CheckedDomain['findings']): CheckedDomain => ({ status: 'pass', findings });

describe('preflightProblems', () => {
  const rows: Array<[string, CheckedDomain, string[], string[]]> = [
    [
      'every MX covered and working',
      check(f('mx', 'MX_RECORDS'), f('tls', 'TLS_STARTTLS', 'mx.a.test')),
      ['mx.a.test'],
      [],
    ],
    ['a wildcard covers one label', check(f('tls', 'TLS_STARTTLS', 'mx1.a.test')), ['*.a.test'], []],
    [
      'a wildcard does not cover two labels',
      check(f('tls', 'TLS_STARTTLS', 'x.mx.a.test')),
      ['*.a.test'],
      ['PREFLIGHT_MX_NOT_COVERED x.mx.a.test'],
    ],
    [
      'an MX host with no address is still in DNS',
      check(f('mx', 'MX_HOST_NO_ADDRESS', 'mx2.a.test', 'fail')),
      ['mx.a.test'],
      ['PREFLIGHT_MX_NOT_COVERED mx2.a.test'],
    ],
    [
      'no STARTTLS, refused, handshake failure',
      check(
        f('tls', 'TLS_NO_STARTTLS', 'mx.a.test', 'warn'),
        f('tls', 'TLS_STARTTLS_REFUSED', 'mx.a.test', 'fail'),
        f('tls', 'TLS_HANDSHAKE_FAILED', 'mx.a.test', 'fail'),
      ),
      ['mx.a.test'],
      ['PREFLIGHT_STARTTLS mx.a.test', 'PREFLIGHT_STARTTLS mx.a.test', 'PREFLIGHT_STARTTLS mx.a.test'],
    ],
    [
      'PKIX: untrusted, wrong name, expired; an expiring one is not a bounce yet',
      check(
        f('tls', 'TLS_CERT_UNTRUSTED', 'mx.a.test', 'warn'),
        f('tls', 'TLS_CERT_NAME_MISMATCH', 'mx.a.test', 'warn'),
        f('tls', 'TLS_CERT_EXPIRED', 'mx.a.test', 'fail'),
        f('tls', 'TLS_CERT_EXPIRING', 'mx.a.test', 'warn'),
      ),
      ['mx.a.test'],
      ['PREFLIGHT_PKIX mx.a.test', 'PREFLIGHT_PKIX mx.a.test', 'PREFLIGHT_PKIX mx.a.test'],
    ],
    [
      'the policy host (mtasts section) is not an MX host',
      check(f('mtasts', 'MTASTS_CERT', 'mta-sts.a.test', 'fail'), f('tls', 'TLS_STARTTLS', 'mx.a.test')),
      ['mx.a.test'],
      [],
    ],
    [
      'a check that could not run proves nothing',
      { status: 'error', error: 'resolver unreachable', findings: [] },
      ['mx.a.test'],
      ['PREFLIGHT_NOT_CHECKED undefined'],
    ],
  ];
  for (const [name, checked, mx, expected] of rows) {
    it(name, () => {
      const problems = preflightProblems('a.test', checked, { mx });
      assert.deepEqual(
        problems.map((p) => `${p.code} ${p.host}`),
        expected,
      );
      for (const p of problems) assert.ok(p.fix.length > 0, `${p.code} has a fix`);
    });
  }

  it('says what bounces without the current-policy consequence, and keeps the check fix', () => {
    const [p] = preflightProblems(
      'a.test',
      check(
        f(
          'tls',
          'TLS_NO_STARTTLS',
          'mx.a.test',
          'warn',
          '192.0.2.1: STARTTLS is not offered; mail arrives in plain text',
          'offer STARTTLS',
        ),
      ),
      { mx: ['mx.a.test'] },
    );
    assert.equal(
      p!.message,
      'mx.a.test: 192.0.2.1: STARTTLS is not offered: enforcing senders will not deliver to it (RFC 8461 §4.2)',
    );
    assert.equal(p!.fix, 'offer STARTTLS');
  });
});
