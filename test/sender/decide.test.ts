// The decision table of docs/policyd.md: the DANE verdict from MX and per-host results (daneVerdict),
// and the socketmap answer from the verdict and the MTA-STS state (decideAnswer), row by row.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { StsPolicy } from '../../src/mtasts/policy.js';
import {
  type DaneVerdictKind,
  daneVerdict,
  type HostDane,
  type HostStatus,
  type MxDane,
} from '../../src/sender/dane.js';
import { type DecideOptions, decideAnswer, type StsView } from '../../src/sender/decide.js';

const host = (name: string, status: HostStatus): HostDane => ({ host: name, status, detail: '', tlsa: [] });
const secureMx: MxDane = { status: 'secure', hosts: [], detail: '' };

describe('daneVerdict', () => {
  const rows: Array<[string, MxDane, HostDane[], DaneVerdictKind]> = [
    [
      'MX lookup failed (bogus or SERVFAIL)',
      { status: 'failed', hosts: [], detail: 'bogus' },
      [],
      'indeterminate',
    ],
    ['MX RRset not signed', { status: 'insecure', hosts: ['mx'], detail: '' }, [], 'none'],
    ['NXDOMAIN', { status: 'nxdomain', hosts: [], detail: '' }, [], 'none'],
    ['null MX', { status: 'null', hosts: [], detail: '' }, [], 'none'],
    ['all hosts usable', secureMx, [host('a', 'usable'), host('b', 'usable')], 'all-usable'],
    ['one usable, one without TLSA', secureMx, [host('a', 'usable'), host('b', 'no-tlsa')], 'some-usable'],
    ['one usable, one insecure', secureMx, [host('a', 'usable'), host('b', 'insecure')], 'some-usable'],
    ['one usable, one unusable', secureMx, [host('a', 'usable'), host('b', 'unusable')], 'some-usable'],
    ['usable, and one unresolved', secureMx, [host('a', 'usable'), host('b', 'unresolved')], 'some-usable'],
    [
      'usable, and one without address',
      secureMx,
      [host('a', 'usable'), host('b', 'no-address')],
      'all-usable',
    ],
    ['a TLSA lookup failed', secureMx, [host('a', 'usable'), host('b', 'tlsa-failed')], 'indeterminate'],
    ['only unusable TLSA', secureMx, [host('a', 'unusable'), host('b', 'no-tlsa')], 'unusable-only'],
    ['signed, no TLSA', secureMx, [host('a', 'no-tlsa')], 'none'],
    ['signed, hosts insecure', secureMx, [host('a', 'insecure')], 'none'],
    ['every host unresolved', secureMx, [host('a', 'unresolved')], 'indeterminate'],
    ['no host has an address', secureMx, [host('a', 'no-address')], 'none'],
  ];
  for (const [name, mx, hosts, kind] of rows) {
    it(`${name}: ${kind}`, () => assert.equal(daneVerdict('example.com', mx, hosts).kind, kind));
  }

  it('names the hosts in the reason', () => {
    const v = daneVerdict('example.com', secureMx, [
      host('mx1.example.com', 'usable'),
      host('mx2.example.com', 'no-tlsa'),
    ]);
    assert.equal(v.reason, 'mx1.example.com has DNSSEC-secure usable TLSA records, mx2.example.com has none');
  });
});

const policy = (mode: StsPolicy['mode'], mx = ['mx.example.com', '*.example.net']): StsView => ({
  kind: 'policy',
  id: '1',
  policy: { mode, maxAge: 86400, mx, extensions: [] },
});
const NONE: StsView = { kind: 'none', reason: 'no record' };
const SECURE = 'OK secure match=mx.example.com:.example.net servername=hostname';
const verdict = (kind: DaneVerdictKind) => ({ kind, reason: 'r' });
const DEFAULTS: DecideOptions = { daneMode: 'dane-only', testingMode: 'ignore' };

describe('decideAnswer', () => {
  // [DANE verdict, MTA-STS, options, answer]
  const rows: Array<[DaneVerdictKind, StsView | undefined, Partial<DecideOptions>, string | undefined]> = [
    ['all-usable', policy('enforce'), {}, 'OK dane-only'],
    ['all-usable', undefined, {}, 'OK dane-only'],
    ['all-usable', NONE, { daneMode: 'dane' }, 'OK dane'],
    ['indeterminate', policy('enforce'), { daneMode: 'dane' }, 'OK dane-only'],
    ['indeterminate', undefined, {}, 'OK dane-only'],
    ['some-usable', policy('enforce'), {}, 'OK dane-only'],
    ['some-usable', policy('enforce'), { daneMode: 'dane' }, 'OK dane-only'],
    ['some-usable', policy('testing'), {}, 'OK dane'],
    ['some-usable', policy('testing'), { testingMode: 'enforce' }, 'OK dane-only'],
    ['some-usable', NONE, {}, 'OK dane'],
    ['some-usable', undefined, {}, undefined],
    ['unusable-only', policy('enforce'), {}, SECURE],
    ['unusable-only', policy('none', []), {}, 'OK dane'],
    ['unusable-only', NONE, {}, 'OK dane'],
    ['unusable-only', undefined, {}, undefined],
    ['none', policy('enforce'), {}, SECURE],
    ['none', policy('testing'), {}, 'NOTFOUND '],
    ['none', policy('testing'), { testingMode: 'enforce' }, SECURE],
    ['none', policy('none', []), {}, 'NOTFOUND '],
    ['none', policy('none'), { testingMode: 'enforce' }, 'NOTFOUND '],
    ['none', NONE, {}, 'NOTFOUND '],
    ['none', undefined, {}, undefined],
  ];
  for (const [dane, sts, options, expected] of rows) {
    const stsName = sts === undefined ? 'unknown' : sts.kind === 'none' ? 'no policy' : sts.policy.mode;
    it(`DANE ${dane}, MTA-STS ${stsName}, ${JSON.stringify(options)}: ${JSON.stringify(expected)}`, () => {
      assert.equal(decideAnswer(verdict(dane), sts, { ...DEFAULTS, ...options })?.text, expected);
    });
  }

  it('without a DANE verdict there is no answer yet', () => {
    assert.equal(decideAnswer(undefined, policy('enforce'), DEFAULTS), undefined);
  });

  it('never answers MTA-STS secure when DANE applies or failed, whatever the policy', () => {
    const kinds: DaneVerdictKind[] = ['all-usable', 'some-usable', 'indeterminate'];
    fc.assert(
      fc.property(
        fc.constantFrom(...kinds),
        fc.constantFrom<StsPolicy['mode']>('enforce', 'testing', 'none'),
        fc.constantFrom<DecideOptions['daneMode']>('dane', 'dane-only'),
        fc.constantFrom<DecideOptions['testingMode']>('enforce', 'ignore'),
        (dane, mode, daneMode, testingMode) => {
          const answer = decideAnswer(verdict(dane), policy(mode), { daneMode, testingMode });
          assert.notEqual(answer?.kind, 'secure');
          assert.notEqual(answer?.kind, 'notfound');
        },
      ),
    );
  });

  it('says why', () => {
    const answer = decideAnswer(verdict('none'), policy('testing'), DEFAULTS);
    assert.match(answer!.why, /testing policies are only reported/);
    assert.match(decideAnswer(verdict('indeterminate'), NONE, DEFAULTS)!.why, /RFC 8461 §2/);
  });
});
