// Flap damping (src/monitor/damping.ts): an alert opens after failChecks / warnChecks consecutive bad
// checks, resolves in the first good one, and a check that could not run changes nothing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { alertChanges, historyNeeded, type PastRun } from '../../src/monitor/damping.js';
import type { Alert, StoredFinding } from '../../src/store/monitor-types.js';

const MISMATCH: StoredFinding = {
  section: 'dane',
  status: 'fail',
  code: 'DANE_TLSA_MISMATCH',
  message: '127.0.0.1: no usable TLSA record matches',
  host: 'mx.a.test',
};
const UNCOVERED: StoredFinding = {
  section: 'mtasts',
  status: 'warn',
  code: 'MTASTS_MX_NOT_COVERED',
  message: 'MX host mx2.a.test matches no mx pattern',
  host: 'mx2.a.test',
};
const GOOD: StoredFinding = { section: 'mx', status: 'pass', code: 'MX_RECORDS', message: 'mx.a.test' };

const run = (...findings: StoredFinding[]): PastRun => ({
  status: findings.length ? 'warn' : 'pass',
  findings,
});
const ERROR: PastRun = { status: 'error', findings: [] };
const DEFAULTS = { failChecks: 1, warnChecks: 2 };

function openAlert(code: string, subject: string): Alert {
  return {
    id: 7,
    domain: 'a.test',
    code,
    subject,
    severity: 'fail',
    message: 'm',
    openedAt: '2026-12-01T00:00:00.000Z',
    openedBy: 1,
  };
}

const opened = (r: ReturnType<typeof alertChanges>) => r.open.map((c) => `${c.code} ${c.subject}`);

describe('alertChanges', () => {
  it('a fail opens at once with failChecks 1', () => {
    assert.deepEqual(opened(alertChanges(run(MISMATCH), [], [], DEFAULTS)), [
      'DANE_TLSA_MISMATCH mx.a.test/127.0.0.1',
    ]);
  });

  it('a warning opens on the second consecutive check only', () => {
    assert.deepEqual(opened(alertChanges(run(UNCOVERED), [run(GOOD)], [], DEFAULTS)), []);
    assert.deepEqual(opened(alertChanges(run(UNCOVERED), [], [], DEFAULTS)), []);
    assert.deepEqual(opened(alertChanges(run(UNCOVERED), [run(UNCOVERED)], [], DEFAULTS)), [
      'MTASTS_MX_NOT_COVERED mx2.a.test',
    ]);
  });

  it('a good check between two bad ones starts the count again', () => {
    const previous = [run(GOOD), run(MISMATCH), run(MISMATCH)];
    assert.deepEqual(opened(alertChanges(run(MISMATCH), previous, [], { failChecks: 3, warnChecks: 2 })), []);
    const held = [run(MISMATCH), run(MISMATCH), run(GOOD)];
    assert.equal(alertChanges(run(MISMATCH), held, [], { failChecks: 3, warnChecks: 2 }).open.length, 1);
  });

  it('checks that could not run are skipped when counting', () => {
    assert.deepEqual(opened(alertChanges(run(UNCOVERED), [ERROR, ERROR, run(UNCOVERED)], [], DEFAULTS)), [
      'MTASTS_MX_NOT_COVERED mx2.a.test',
    ]);
  });

  it('an open alert is not opened again, and resolves when its condition is gone', () => {
    const open = [openAlert('DANE_TLSA_MISMATCH', 'mx.a.test/127.0.0.1')];
    assert.deepEqual(alertChanges(run(MISMATCH), [run(MISMATCH)], open, DEFAULTS), { open: [], resolve: [] });
    const r = alertChanges(run(GOOD), [run(MISMATCH)], open, DEFAULTS);
    assert.deepEqual(r.open, []);
    assert.deepEqual(
      r.resolve.map((a) => a.id),
      [7],
    );
  });

  it('the same code on another address is another alert', () => {
    const open = [openAlert('DANE_TLSA_MISMATCH', 'mx.a.test/127.0.0.2')];
    const r = alertChanges(run(MISMATCH), [], open, DEFAULTS);
    assert.deepEqual(opened(r), ['DANE_TLSA_MISMATCH mx.a.test/127.0.0.1']);
    assert.deepEqual(
      r.resolve.map((a) => a.subject),
      ['mx.a.test/127.0.0.2'],
    );
  });

  it('a check that could not run neither opens nor resolves', () => {
    const open = [openAlert('DANE_TLSA_MISMATCH', 'mx.a.test/127.0.0.1')];
    assert.deepEqual(alertChanges(ERROR, [run(MISMATCH)], open, DEFAULTS), { open: [], resolve: [] });
  });

  it('reads enough history for the longest count, with room for runs that could not run', () => {
    assert.equal(historyNeeded({ failChecks: 1, warnChecks: 1 }), 0);
    assert.ok(historyNeeded({ failChecks: 1, warnChecks: 2 }) >= 1);
    assert.ok(historyNeeded({ failChecks: 5, warnChecks: 2 }) >= 4);
  });
});
