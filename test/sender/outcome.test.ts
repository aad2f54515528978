// What each kind of sender does per MX host (src/sender/outcome.ts), row by row from the DANE view, the
// MTA-STS state and what probes showed. Pure: the views are built by hand.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StsPolicy } from '../../src/mtasts/policy.js';
import { type DaneDiscovery, daneVerdict, type HostDane, type MxDane } from '../../src/sender/dane.js';
import type { StsView } from '../../src/sender/decide.js';
import { type HostTlsFacts, type SenderKind, senderOutcome } from '../../src/sender/outcome.js';

function discovery(mx: MxDane, hosts: HostDane[] = []): DaneDiscovery {
  return { domain: 'example.com', mx, hosts, verdict: daneVerdict('example.com', mx, hosts), ttlMs: 60_000 };
}
const host = (name: string, status: HostDane['status']): HostDane => ({
  host: name,
  status,
  detail: status,
  tlsa: [],
});
const secureMx = (...names: string[]): MxDane => ({ status: 'secure', hosts: names, detail: '' });
const insecureMx = (...names: string[]): MxDane => ({ status: 'insecure', hosts: names, detail: '' });
const policy = (mode: StsPolicy['mode'], mx: string[]): StsView => ({
  kind: 'policy',
  id: '1',
  policy: { mode, mx, maxAge: 86400, extensions: [] },
});
const NONE: StsView = { kind: 'none', reason: 'no "v=STSv1" TXT record' };

function deliveries(
  kind: SenderKind,
  dane: DaneDiscovery,
  sts: StsView,
  tls: Record<string, HostTlsFacts> = {},
): Array<[string, string]> {
  const outcome = senderOutcome(kind, { dane, sts, tls: new Map(Object.entries(tls)) });
  return outcome.hosts.map((h) => [h.host, h.delivery]);
}

describe('senderOutcome', () => {
  it('dane-only: DANE where usable TLSA records are, refused elsewhere (Postfix defers)', () => {
    const dane = discovery(secureMx('a.example', 'b.example'), [
      host('a.example', 'usable'),
      host('b.example', 'no-tlsa'),
    ]);
    const enforce = policy('enforce', ['a.example', 'b.example']);
    const outcome = senderOutcome('dane-mta-sts', { dane, sts: enforce });
    assert.equal(outcome.answer?.text, 'OK dane-only');
    assert.deepEqual(deliveries('dane-mta-sts', dane, enforce), [
      ['a.example', 'dane'],
      ['b.example', 'refuse'],
    ]);
    // Without DANE the MTA-STS-only sender uses the policy for both.
    assert.deepEqual(deliveries('mta-sts', dane, enforce), [
      ['a.example', 'mta-sts'],
      ['b.example', 'mta-sts'],
    ]);
  });

  it('dane: unusable TLSA makes TLS mandatory but unauthenticated, a host without TLSA gets opportunistic TLS', () => {
    const dane = discovery(secureMx('a.example', 'b.example', 'c.example'), [
      host('a.example', 'usable'),
      host('b.example', 'unusable'),
      host('c.example', 'no-tlsa'),
    ]);
    assert.equal(senderOutcome('dane-mta-sts', { dane, sts: NONE }).answer?.text, 'OK dane');
    assert.deepEqual(
      deliveries('dane-mta-sts', dane, NONE, {
        'b.example': { starttls: false },
        'c.example': { starttls: false },
      }),
      [
        ['a.example', 'dane'],
        ['b.example', 'refuse'],
        ['c.example', 'plain'],
      ],
    );
  });

  it('a TLSA record matching no certificate is refused (450 4.7.323 tlsa-invalid)', () => {
    const dane = discovery(secureMx('a.example'), [host('a.example', 'usable')]);
    const outcome = senderOutcome('dane-mta-sts', {
      dane,
      sts: NONE,
      tls: new Map([['a.example', { starttls: true, daneMatch: false }]]),
    });
    assert.equal(outcome.hosts[0]?.delivery, 'refuse');
    assert.match(outcome.hosts[0]!.why, /tlsa-invalid/);
  });

  it('secure: a host no mx pattern matches is refused; a certificate that does not verify too', () => {
    const dane = discovery(insecureMx('mx.example.com', 'backup.example.net'));
    const sts = policy('enforce', ['*.example.com']);
    assert.match(
      senderOutcome('dane-mta-sts', { dane, sts }).answer!.text,
      /^OK secure match=\.example\.com /,
    );
    assert.deepEqual(
      deliveries('dane-mta-sts', dane, sts, { 'mx.example.com': { starttls: true, pkixValid: false } }),
      [
        ['mx.example.com', 'refuse'],
        ['backup.example.net', 'refuse'],
      ],
    );
    assert.deepEqual(deliveries('mta-sts', dane, sts), [
      ['mx.example.com', 'mta-sts'],
      ['backup.example.net', 'refuse'],
    ]); // Postfix matches ".example.com" at any depth; an RFC 8461 sender only one label down.
    const deep = discovery(insecureMx('a.mx.example.com'));
    assert.deepEqual(deliveries('dane-mta-sts', deep, sts), [['a.mx.example.com', 'mta-sts']]);
    assert.deepEqual(deliveries('mta-sts', deep, sts), [['a.mx.example.com', 'refuse']]);
  });

  it('a testing policy is not enforced: opportunistic TLS, or plain text without STARTTLS', () => {
    const dane = discovery(insecureMx('mx.example.com'));
    const sts = policy('testing', ['mx.example.com']);
    assert.deepEqual(deliveries('mta-sts', dane, sts, { 'mx.example.com': { starttls: false } }), [
      ['mx.example.com', 'plain'],
    ]);
    assert.deepEqual(deliveries('opportunistic', dane, sts, { 'mx.example.com': { starttls: true } }), [
      ['mx.example.com', 'tls'],
    ]);
    assert.equal(senderOutcome('dane-mta-sts', { dane, sts }).answer?.text, 'NOTFOUND ');
  });

  it('null MX, NXDOMAIN and a failed MX lookup: no host is tried, and the answer is still given', () => {
    for (const [mx, pattern] of [
      [{ status: 'null', hosts: [], detail: 'null MX' }, /null MX/],
      [{ status: 'nxdomain', hosts: [], detail: 'NXDOMAIN' }, /NXDOMAIN/],
      [{ status: 'failed', hosts: [], detail: 'SERVFAIL' }, /deferred/],
    ] as Array<[MxDane, RegExp]>) {
      const outcome = senderOutcome('dane-mta-sts', { dane: discovery(mx), sts: NONE });
      assert.match(outcome.none ?? '', pattern);
      assert.deepEqual(outcome.hosts, []);
      assert.ok(outcome.answer !== undefined);
    }
    const failed = senderOutcome('dane-mta-sts', {
      dane: discovery({ status: 'failed', hosts: [], detail: '' }),
      sts: NONE,
    });
    assert.equal(failed.answer?.text, 'OK dane-only', 'a failed MX lookup never falls back to MTA-STS');
  });

  it('hosts without an address are left out; none left means no delivery', () => {
    const dane = discovery(secureMx('a.example', 'b.example'), [
      host('a.example', 'no-address'),
      host('b.example', 'no-tlsa'),
    ]);
    assert.deepEqual(deliveries('opportunistic', dane, NONE), [['b.example', 'tls']]);
    const empty = discovery(secureMx('a.example'), [host('a.example', 'no-address')]);
    assert.match(
      senderOutcome('opportunistic', { dane: empty, sts: NONE }).none ?? '',
      /no MX host has an address/,
    );
  });

  it('the answer policyd gave (other modes) is used when handed in', () => {
    const dane = discovery(secureMx('a.example', 'b.example'), [
      host('a.example', 'usable'),
      host('b.example', 'no-tlsa'),
    ]);
    const outcome = senderOutcome('dane-mta-sts', {
      dane,
      sts: NONE,
      answer: { kind: 'dane', text: 'OK dane', why: '' },
    });
    assert.deepEqual(
      outcome.hosts.map((h) => h.delivery),
      ['dane', 'tls'],
    );
  });
});
