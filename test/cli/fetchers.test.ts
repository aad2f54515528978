// `mxguard fetchers` (src/cli/fetchers.ts) on real files: an IIS log, a gzip-compressed nginx rotation, a
// truncated gzip file and a missing file; --json, --domain, and the exit status.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { openStore } from '../../src/store/index.js';
import { runCli } from '../helpers/cli.js';

let dir: string;
const IIS = [
  '#Software: Microsoft Internet Information Services 10.0',
  '#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken',
  '2023-07-11 08:29:59 172.16.1.4 GET /.well-known/mta-sts.txt - 443 - 74.125.217.68 Google-SMTP-STS - 200 0 0 119',
  '2023-07-11 08:30:10 172.16.1.4 GET /index.html - 443 - 74.125.217.68 Mozilla/5.0 - 200 0 0 3',
  'not a log line',
  '2023-07-12 01:00:00 172.16.1.4 GET /.well-known/mta-sts.txt - 443 - 40.92.0.1 Microsoft+Exchange - 404 0 0 3',
].join('\r\n');
const NGINX = [
  'mta-sts.example.com:443 203.0.113.5 - - [12/Jul/2023:10:00:00 +0200] "GET /.well-known/mta-sts.txt HTTP/1.1" 200 90 "-" "Google-SMTP-STS"',
  'mta-sts.other.net:443 203.0.113.6 - - [12/Jul/2023:10:00:01 +0200] "GET /.well-known/mta-sts.txt HTTP/1.1" 200 90 "-" "Google-SMTP-STS"',
].join('\n');

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mxguard-fetchers-'));
  writeFileSync(join(dir, 'u_ex230711.log'), IIS);
  writeFileSync(join(dir, 'access.log.1.gz'), gzipSync(NGINX));
  writeFileSync(join(dir, 'broken.gz'), gzipSync(NGINX).subarray(0, 30));
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Result {
  fetches: number;
  failed: number;
  malformed: number;
  rows: Array<{
    day: string;
    fetcher: string;
    host?: string;
    fetches: number;
    statuses: Record<string, number>;
  }>;
  unreadable: string[];
}

describe('mxguard fetchers', () => {
  it('counts fetches per day and fetcher across IIS and gzip-compressed nginx logs (--json)', () => {
    const r = runCli(['fetchers', join(dir, 'u_ex230711.log'), join(dir, 'access.log.1.gz'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Result;
    assert.equal(out.fetches, 4);
    assert.equal(out.failed, 1);
    assert.equal(out.malformed, 1);
    assert.deepEqual(
      out.rows.map((row) => [row.day, row.fetcher, row.host ?? null, row.fetches]),
      [
        ['2023-07-11', 'Google', null, 1],
        ['2023-07-12', 'Google', 'mta-sts.example.com', 1],
        ['2023-07-12', 'Google', 'mta-sts.other.net', 1],
        ['2023-07-12', 'Microsoft', null, 1],
      ],
    );
  });

  it('--domain keeps the fetches of mta-sts.<domain> (and those of logs that do not record the host)', () => {
    const r = runCli(['fetchers', join(dir, 'access.log.1.gz'), '--domain', 'example.com', '--json']);
    const out = JSON.parse(r.stdout) as Result;
    assert.deepEqual(
      out.rows.map((row) => row.host),
      ['mta-sts.example.com'],
    );
  });

  it('reads every file it can, then exits 2 naming the ones it could not', () => {
    const r = runCli([
      'fetchers',
      join(dir, 'missing.log'),
      join(dir, 'broken.gz'),
      join(dir, 'u_ex230711.log'),
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stdout, /2 policy fetches \(1 failed\)/);
    assert.match(r.stdout, /cannot read .*missing\.log: ENOENT/);
    assert.match(r.stdout, /cannot read .*broken\.gz: Z_BUF_ERROR \(unexpected end of file\)/);
    assert.match(r.stdout, /1 malformed lines skipped/);
  });

  it('a bad --domain is refused (exit 2)', () => {
    const r = runCli(['fetchers', join(dir, 'u_ex230711.log'), '--domain', 'not a domain']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--domain/);
  });

  it("--import adds the fetches of the domain to serve's fetch log, once", async () => {
    const data = join(dir, 'data');
    const add = runCli(['domain', 'add', 'example.com', '--mx', 'mx.example.com', '--data-dir', data]);
    assert.equal(add.code, 0, add.stderr);
    const files = [join(dir, 'access.log.1.gz'), join(dir, 'u_ex230711.log')];
    const first = runCli(['fetchers', ...files, '--domain', 'example.com', '--import', '--data-dir', data]);
    assert.equal(first.code, 0, first.stderr);
    // mta-sts.other.net is another domain's; the IIS log records no host, so its two fetches count.
    assert.match(first.stdout, /^3 fetches imported into the fetch log of example\.com$/m);
    const again = runCli(['fetchers', ...files, '--domain', 'example.com', '--import', '--data-dir', data]);
    assert.match(again.stdout, /^0 fetches imported/m);
    const store = await openStore(data, { mustExist: true });
    try {
      const log = await store.listFetches('example.com');
      assert.deepEqual(log.items.map((f) => [f.at, f.userAgent]).sort(), [
        ['2023-07-11T08:29:59.000Z', 'Google-SMTP-STS'],
        ['2023-07-12T01:00:00.000Z', 'Microsoft Exchange'],
        ['2023-07-12T08:00:00.000Z', 'Google-SMTP-STS'],
      ]);
    } finally {
      await store.close();
    }
    const unknown = runCli([
      'fetchers',
      files[0]!,
      '--domain',
      'nothere.example',
      '--import',
      '--data-dir',
      data,
    ]);
    assert.equal(unknown.code, 2);
    assert.match(
      unknown.stderr,
      /nothere\.example is not configured .* domain add nothere\.example --watch-only/,
    );
  });
});
