// Counting policy fetches (src/accesslog/tally.ts): per day, fetcher and host; only GET/HEAD of the policy
// path; anything but 200 failed (RFC 8461 §3.3); the row cap.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AccessEntry } from '../../src/accesslog/parse.js';
import { FetchTally, MAX_ROWS } from '../../src/accesslog/tally.js';

const entry = (over: Partial<AccessEntry> = {}): AccessEntry => ({
  at: '2024-03-01T10:00:00.000Z',
  method: 'GET',
  path: '/.well-known/mta-sts.txt',
  status: 200,
  userAgent: 'Google-SMTP-STS',
  clientIp: '192.0.2.1',
  ...over,
});

describe('FetchTally', () => {
  it('counts fetches per day, fetcher and host, with statuses and failures', () => {
    const t = new FetchTally();
    t.entry(entry());
    t.entry(entry({ status: 301 }));
    t.entry(entry({ userAgent: 'Microsoft Exchange', at: '2024-03-02T00:00:00.000Z' }));
    t.entry(entry({ path: '/index.html' }));
    t.entry(entry({ method: 'POST' }));
    t.malformed('f:1', 'bad');
    const r = t.result();
    assert.equal(r.requests, 5);
    assert.equal(r.fetches, 3);
    assert.equal(r.failed, 1);
    assert.equal(r.malformed, 1);
    assert.deepEqual(
      r.rows.map((row) => [row.day, row.fetcher, row.fetches, row.statuses, row.failed]),
      [
        ['2024-03-01', 'Google', 2, { 200: 1, 301: 1 }, 1],
        ['2024-03-02', 'Microsoft', 1, { 200: 1 }, 0],
      ],
    );
  });

  it('keeps at most MAX_ROWS rows and counts the rest as dropped', () => {
    const t = new FetchTally();
    for (let i = 0; i < MAX_ROWS + 3; i++) t.entry(entry({ host: `mta-sts.d${i}.example` }));
    const r = t.result();
    assert.equal(r.rows.length, MAX_ROWS);
    assert.equal(r.droppedRows, 3);
    assert.equal(r.fetches, MAX_ROWS + 3);
  });
});
