// What changed between two runs of the audit (src/check/diff.ts): findings added, gone and changed,
// with findings of one identity (section, code, host, sender) paired equal ones first.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { diffFindings } from '../../src/check/diff.js';

const f = (code: string, status: string, message: string, host?: string) => ({
  section: 'tls',
  code,
  status,
  message,
  ...(host === undefined ? {} : { host }),
});

describe('diffFindings', () => {
  it('added, gone, changed and unchanged', () => {
    const older = [f('A', 'pass', 'a'), f('B', 'warn', 'expires in 30 days', 'mx'), f('C', 'pass', 'c')];
    const newer = [f('A', 'pass', 'a'), f('B', 'warn', 'expires in 20 days', 'mx'), f('D', 'fail', 'd')];
    const diff = diffFindings(older, newer);
    assert.deepEqual(diff.added, [f('D', 'fail', 'd')]);
    assert.deepEqual(diff.gone, [f('C', 'pass', 'c')]);
    assert.deepEqual(diff.changed, [{ before: older[1], after: newer[1] }]);
    assert.equal(diff.unchanged, 1);
  });

  it('the same code on another host is another finding', () => {
    const diff = diffFindings([f('A', 'pass', 'x', 'mx1')], [f('A', 'pass', 'x', 'mx2')]);
    assert.equal(diff.added.length, 1);
    assert.equal(diff.gone.length, 1);
    assert.equal(diff.changed.length, 0);
  });

  it('findings of one identity pair equal ones first (one per address)', () => {
    const older = [f('A', 'pass', '192.0.2.1: ok', 'mx'), f('A', 'pass', '192.0.2.2: ok', 'mx')];
    const newer = [f('A', 'pass', '192.0.2.2: ok', 'mx')];
    const diff = diffFindings(older, newer);
    assert.equal(diff.unchanged, 1);
    assert.deepEqual(diff.gone, [older[0]]);
    assert.deepEqual(diff.changed, []);
  });

  it('accounts for every finding of both runs', () => {
    const finding = fc
      .record({
        code: fc.constantFrom('A', 'B'),
        status: fc.constantFrom('pass', 'fail'),
        message: fc.constantFrom('x', 'y'),
        host: fc.constantFrom('mx1', 'mx2'),
      })
      .map((r) => f(r.code, r.status, r.message, r.host));
    fc.assert(
      fc.property(
        fc.array(finding, { maxLength: 12 }),
        fc.array(finding, { maxLength: 12 }),
        (older, newer) => {
          const d = diffFindings(older, newer);
          assert.equal(d.unchanged + d.changed.length + d.gone.length, older.length);
          assert.equal(d.unchanged + d.changed.length + d.added.length, newer.length);
          assert.deepEqual(diffFindings(older, older).unchanged, older.length);
        },
      ),
    );
  });
});
