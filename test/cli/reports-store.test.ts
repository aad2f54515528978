// `mxguard reports import` and `mxguard reports list`: the built command on a real store.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { CLIP_MARK, LIST_TEXT_MAX } from '../../src/store/paging.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import {
  type EditableJson,
  reportEmail,
  reportGzip,
  reportJson,
  reportObject,
} from '../fixtures/tlsrpt/build.js';
import { BIN, runCli } from '../helpers/cli.js';
import { insertLegacyReports, MIB, rowsOfReport } from '../helpers/legacy-reports.js';

let root: string;
let counter = 0;
const fresh = () => {
  const dir = join(root, `case-${++counter}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};

before(() => {
  root = mkdtempSync(join(tmpdir(), 'mxguard-cli-reports-store-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

const FIXTURE_ID = '2024-05-01_receiver.example_7f3a';

function variant(reportId: string, edit: (r: EditableJson) => void = () => {}): Buffer {
  const r = reportObject();
  r['report-id'] = reportId;
  edit(r);
  return Buffer.from(JSON.stringify(r));
}

function write(dir: string, name: string, content: Buffer | string): string {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, content);
  return path;
}

/** `<dir>/data` with an empty store, as `mxguard serve` or `domain add` leave it: import needs one. */
async function storeIn(dir: string): Promise<string> {
  const data = join(dir, 'data');
  await (await openSqliteStore(data)).close();
  return data;
}

const importCli = (data: string, ...args: string[]) =>
  runCli(['reports', 'import', ...args, '--data-dir', data]);
const listCli = (data: string, ...args: string[]) => runCli(['reports', 'list', ...args, '--data-dir', data]);

describe('reports import: files', () => {
  it('stores .json, .json.gz and .eml (every report inside); a repeat is "already stored"', async () => {
    const dir = fresh();
    const data = await storeIn(dir);
    const json = write(dir, 'a.json', variant('json-1'));
    const gz = write(dir, 'b.json.gz', gzipSync(variant('gz-1')));
    const eml = write(
      dir,
      'c.eml',
      reportEmail([
        { type: 'application/tlsrpt+gzip', filename: 'x.json.gz', content: reportGzip },
        { type: 'application/tlsrpt+json', filename: 'y.json', content: variant('eml-2') },
      ]),
    );
    const r = importCli(data, json, gz, eml);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(
      r.stdout,
      new RegExp(`^${json}: stored report "json-1" from Sender Mail Co \\(id 1\\)$`, 'm'),
    );
    assert.match(r.stdout, new RegExp(`^${gz}: stored report "gz-1" from Sender Mail Co \\(id 2\\)$`, 'm'));
    assert.match(
      r.stdout,
      new RegExp(`^${eml}: stored report "${FIXTURE_ID}" from Sender Mail Co \\(id 3\\)$`, 'm'),
    );
    assert.match(r.stdout, new RegExp(`^${eml}: stored report "eml-2" from Sender Mail Co \\(id 4\\)$`, 'm'));
    assert.match(r.stdout, /^4 stored, 0 already stored, 0 rejected, 0 unreadable$/m);

    const again = importCli(data, gz, '--json');
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout), {
      files: [
        {
          path: gz,
          status: 'stored',
          reports: [
            { kind: 'tlsrpt', id: 2, created: false, organization: 'Sender Mail Co', reportId: 'gz-1' },
          ],
        },
      ],
      summary: { stored: 0, alreadyStored: 1, rejected: 0, unreadable: 0, skipped: 0 },
    });
    const human = importCli(data, json);
    assert.match(
      human.stdout,
      new RegExp(`^${json}: already stored: report "json-1" from Sender Mail Co \\(id 1\\)$`, 'm'),
    );
  });

  it('stores imports with source "import", DKIM "unverified" and the path as submitter', async () => {
    const dir = fresh();
    const data = await storeIn(dir);
    const path = write(dir, 'r.json', reportJson);
    assert.equal(importCli(data, path).code, 0);
    const store = await openSqliteStore(data);
    try {
      const stored = await store.getReport(1);
      assert.equal(stored?.source, 'import');
      assert.equal(stored?.dkim, 'unverified');
      assert.equal(stored?.submitter, path);
      assert.equal(stored?.report.policies.length, 2);
    } finally {
      await store.close();
    }
  });

  it('input that is not a report: rejected with the reason, printed, kept in the rejected list, exit 1', async () => {
    const dir = fresh();
    const data = await storeIn(dir);
    const good = write(dir, 'good.json', reportJson);
    const notes = write(dir, 'notes.txt', 'just some text\n');
    const broken = write(
      dir,
      'broken.json',
      variant('x', (r) => {
        delete r.policies;
      }),
    );
    const r = importCli(data, notes, good, broken);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`^${notes}: rejected \\[TLSRPT_NOT_A_REPORT\\]: .*neither JSON, gzip nor an email`, 'm'),
    );
    assert.match(r.stderr, new RegExp(`^${broken}: rejected \\[TLSRPT_MISSING_FIELD\\]: .*policies`, 'm'));
    assert.match(r.stdout, /^1 stored, 0 already stored, 2 rejected, 0 unreadable$/m);

    const rejected = JSON.parse(listCli(data, '--rejected', '--json').stdout).rejected;
    assert.deepEqual(
      rejected.map((x: { source: string; submitter: string; size: number }) => [
        x.source,
        x.submitter,
        x.size,
      ]),
      [
        ['import', broken, Buffer.byteLength(variant('x', (rr) => delete rr.policies))],
        ['import', notes, 15],
      ],
    );
    const human = listCli(data, '--rejected');
    assert.match(
      human.stdout,
      new RegExp(`^#1 \\S+ import from ${notes}, 15 bytes: not a TLS-RPT report`, 'm'),
    );
  });

  it('an unreadable path is exit 2, and every other path is still imported', async () => {
    const dir = fresh();
    const data = await storeIn(dir);
    const good = write(dir, 'good.json', reportJson);
    const missing = join(dir, 'missing.json');
    const notes = write(dir, 'notes.txt', 'text');
    const r = importCli(data, missing, good, notes);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`^${missing}: cannot read: no such file or folder$`, 'm'));
    assert.match(r.stdout, /^1 stored, 0 already stored, 1 rejected, 1 unreadable$/m);
  });

  it('a file over the intake size cap is rejected without being read', async () => {
    const dir = fresh();
    const data = await storeIn(dir);
    const big = write(dir, 'big.json', Buffer.alloc(10 * 1024 * 1024 + 1, 0x20));
    const r = importCli(data, big);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /rejected \[TLSRPT_TOO_LARGE\]: the input is 10485761 bytes/);
  });
});

describe('reports import: Maildir and folders', () => {
  it('a Maildir: every message in cur/ and new/, not tmp/; nothing is moved', async () => {
    const dir = fresh();
    const data = await storeIn(dir);
    const maildir = join(dir, 'Maildir');
    const mail = (id: string) =>
      reportEmail([
        { type: 'application/tlsrpt+gzip', filename: 'r.json.gz', content: gzipSync(variant(id)) },
      ]);
    write(maildir, 'cur/1714600000.M1P1.host:2,S', mail('cur-1'));
    write(maildir, 'cur/1714600001.M2P1.host:2,', mail('cur-2'));
    write(maildir, 'new/1714600002.M3P1.host', mail('new-1'));
    write(maildir, 'tmp/1714600003.M4P1.host', mail('tmp-1'));
    write(maildir, 'new/1714600004.M5P1.host', 'Subject: not a report\r\n\r\nhello\r\n');
    const r = importCli(data, maildir, '--json');
    assert.equal(r.code, 1, r.stderr);
    const out = JSON.parse(r.stdout);
    const ids = out.files.flatMap((f: { reports?: Array<{ reportId: string }> }) =>
      (f.reports ?? []).map((x) => x.reportId),
    );
    assert.deepEqual(ids.sort(), ['cur-1', 'cur-2', 'new-1']);
    assert.deepEqual(out.summary, { stored: 3, alreadyStored: 0, rejected: 1, unreadable: 0, skipped: 0 });
    const rejected = out.files.find((f: { status: string }) => f.status === 'rejected');
    assert.equal(rejected.path, join(maildir, 'new/1714600004.M5P1.host'));
    assert.equal(rejected.code, 'TLSRPT_NO_REPORT_IN_EMAIL');
    // imported again: all already stored, the Maildir untouched
    const again = JSON.parse(importCli(data, maildir, '--json').stdout);
    assert.equal(again.summary.alreadyStored, 3);
  });

  it('another folder is walked: report-named files and Maildirs inside; others skipped and counted', async () => {
    const dir = fresh();
    const data = await storeIn(dir);
    const tree = join(dir, 'saved');
    write(tree, 'a.json', variant('walk-a'));
    write(tree, '2024/05/b.json.gz', gzipSync(variant('walk-b')));
    write(tree, '2024/05/c.GZ', gzipSync(variant('walk-c')));
    write(tree, 'mail/d.eml', reportEmail([{ type: 'application/tlsrpt+json', content: variant('walk-d') }]));
    write(
      tree,
      'box/new/msg1',
      reportEmail([{ type: 'application/tlsrpt+json', content: variant('walk-e') }]),
    );
    write(tree, 'README.txt', 'not a report');
    write(tree, '.hidden/f.json', variant('walk-hidden'));
    symlinkSync(tree, join(tree, 'loop')); // a link back to the folder: not followed
    const r = importCli(data, tree);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^5 stored, 0 already stored, 0 rejected, 0 unreadable, 2 skipped \(not named like a report\)$/m,
    );
    const listed = JSON.parse(listCli(data, '--json').stdout).reports.map(
      (x: { reportId: string }) => x.reportId,
    );
    assert.deepEqual(listed.sort(), ['walk-a', 'walk-b', 'walk-c', 'walk-d', 'walk-e']);
    const json = JSON.parse(importCli(data, tree, '--json').stdout);
    const skipped = json.files
      .filter((f: { status: string }) => f.status === 'skipped')
      .map((f: { path: string }) => f.path);
    assert.deepEqual(skipped.sort(), [join(tree, 'README.txt'), join(tree, 'loop')]);
  });
});

describe('reports list', () => {
  async function seeded(): Promise<string> {
    const dir = fresh();
    const data = await storeIn(dir);
    const files = [
      write(
        dir,
        '1.json',
        variant('first', (r) => (r['date-range']['start-datetime'] = '2024-04-01T00:00:00Z')),
      ),
      write(dir, '2.json', reportJson),
      write(
        dir,
        '3.json',
        variant('other', (r) => {
          r.policies[0].policy['policy-domain'] = 'other.example';
          r.policies = [r.policies[0]];
          r['organization-name'] = '<script>alert(1)</script>\u001b[2J Evil';
        }),
      ),
    ];
    assert.equal(importCli(data, ...files).code, 0);
    return data;
  }

  it('--json lists id, reportId, organization, period, domains, counts, source and DKIM, newest first', async () => {
    const data = await seeded();
    const r = listCli(data, '--json');
    assert.equal(r.code, 0, r.stderr);
    const listed = JSON.parse(r.stdout);
    assert.equal(listed.total, 3);
    assert.equal(listed.nextCursor, null);
    const reports = listed.reports;
    assert.deepEqual(
      reports.map((x: { reportId: string }) => x.reportId),
      ['other', FIXTURE_ID, 'first'], // the same start: the later stored first
    );
    const { receivedAt, ...rest } = reports[1];
    assert.match(receivedAt, /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(rest, {
      kind: 'tlsrpt',
      id: 2,
      organization: 'Sender Mail Co',
      reportId: FIXTURE_ID,
      start: '2024-05-01T00:00:00Z',
      end: '2024-05-01T23:59:59Z',
      domains: ['mx1.receiver.example', 'receiver.example'],
      successful: 2000,
      failed: 15,
      source: 'import',
      dkim: 'unverified',
    });
    // attacker-controlled text stays data in JSON
    assert.equal(reports[0].organization, '<script>alert(1)</script>\u001b[2J Evil');
  });

  const filters: Array<[string, string[], string[]]> = [
    ['--domain', ['--domain', 'OTHER.example'], ['other']],
    ['--domain of the tlsa policy', ['--domain', 'mx1.receiver.example'], [FIXTURE_ID, 'first']],
    ['--limit', ['--limit', '1'], ['other']],
    ['--since', ['--since', '2024-04-15'], ['other', FIXTURE_ID]],
    ['--until', ['--until', '2024-04-30'], ['first']],
  ];
  for (const [name, args, expected] of filters) {
    it(`filters with ${name}`, async () => {
      const data = await seeded();
      const r = listCli(data, ...args, '--json');
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        JSON.parse(r.stdout).reports.map((x: { reportId: string }) => x.reportId),
        expected,
      );
    });
  }

  it('the human table escapes control characters from report fields', async () => {
    const data = await seeded();
    const r = listCli(data);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^ID\s+PERIOD\s+ORGANIZATION\s+REPORT ID\s+DOMAINS\s+OK\s+FAILED\s+SOURCE\s+DKIM$/m,
    );
    assert.match(
      r.stdout,
      /^2\s+2024-05-01T00:00:00Z to 2024-05-01T23:59:59Z\s+Sender Mail Co\s+2024-05-01_receiver/m,
    );
    assert.match(r.stdout, /<script>alert\(1\)<\/script>\\x1b\[2J Evil/);
    assert.doesNotMatch(r.stdout, /\u001b/);
  });

  it('an empty store says so; bad options are exit 2', async () => {
    const data = await storeIn(fresh());
    assert.equal(listCli(data).stdout, 'no reports stored\n');
    const since = listCli(data, '--since', 'yesterday');
    assert.equal(since.code, 2);
    assert.match(since.stderr, /since: "yesterday" is not an ISO date or timestamp/);
    const limit = listCli(data, '--limit', '0');
    assert.equal(limit.code, 2);
    assert.match(limit.stderr, /--limit: must be between 1 and 10000/);
  });

  it('--help has examples and the exit status', () => {
    for (const sub of ['list', 'import', 'show', 'delete', 'purge']) {
      const r = runCli(['reports', sub, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`mxguard reports ${sub} `));
      assert.match(r.stdout, /Exit status: 0/);
    }
  });
});

describe('reports list, show: hostile and giant values on the terminal', () => {
  async function withLegacy(): Promise<{ data: string; ids: number[] }> {
    const dir = fresh();
    const data = await storeIn(dir);
    assert.equal(importCli(data, write(dir, 'ok.json', reportJson)).code, 0);
    const ids = insertLegacyReports(data, [
      {
        organization: `Evil\u202Egpj.exe\u2066 \u001b]0;owned\u0007 Org`,
        reportId: `\u202e${'R'.repeat(MIB)}`,
        start: '2024-05-02T00:00:00Z',
        domain: 'receiver.example',
        submitter: `\u001b[2J${'s'.repeat(MIB)}`,
        failures: [
          { resultType: `\u202e${'t'.repeat(MIB)}`, count: 2, receivingMxHostname: 'mx\u202e.example' },
        ],
      },
    ]);
    return { data, ids };
  }

  const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

  it('reports list escapes bidi overrides and control characters and clips a 1 MB report id', async () => {
    const { data } = await withLegacy();
    const r = listCli(data);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, UNSAFE);
    assert.ok(r.stdout.length < 2000, `${r.stdout.length} characters printed`);
    assert.match(r.stdout, /Evil\\u\{202e\}gpj\.exe\\u\{2066\} \\x1b\]0;owned\\x07 Org/);
    assert.match(r.stdout, /\\u\{202e\}RRRR+\.\.\. \(over 256 characters\)/);
    // --json keeps the value as data (cut at the list view's length, marked)
    const json = JSON.parse(listCli(data, '--json').stdout).reports[0];
    assert.equal(json.organization, 'Evil\u202Egpj.exe\u2066 \u001b]0;owned\u0007 Org');
    assert.equal(json.reportId, `\u202e${'R'.repeat(LIST_TEXT_MAX - 1)}${CLIP_MARK}`);
    assert.deepEqual(json.clipped, ['reportId']);
  });

  it('reports list --rejected escapes and clips the submitter and reason', async () => {
    const dir = fresh();
    const data = join(dir, 'data');
    const store = await openSqliteStore(data);
    try {
      await store.saveRejected(
        { source: 'smtp', submitter: `\u202e${'x'.repeat(MIB)}`, reason: 'bad\u001b[31m', size: 3 },
        new Date(),
      );
    } finally {
      await store.close();
    }
    const r = listCli(data, '--rejected');
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, UNSAFE);
    assert.ok(r.stdout.length < 1000);
    assert.match(r.stdout, /from \\u\{202e\}xxx+\.\.\. \(over 256 characters\).*bad\\x1b\[31m/);
  });

  it('reports list pages with --cursor; the human output says how to go on', async () => {
    const dir = fresh();
    const data = await storeIn(dir);
    const files = Array.from({ length: 5 }, (_, i) => write(dir, `${i}.json`, variant(`page-${i}`)));
    assert.equal(importCli(data, ...files).code, 0);
    const first = JSON.parse(listCli(data, '--limit', '2', '--json').stdout);
    assert.equal(first.total, 5);
    assert.equal(first.reports.length, 2);
    const second = JSON.parse(listCli(data, '--limit', '2', '--cursor', first.nextCursor, '--json').stdout);
    assert.equal(second.reports.length, 2);
    assert.deepEqual(
      [...first.reports, ...second.reports].map((x: { reportId: string }) => x.reportId),
      ['page-4', 'page-3', 'page-2', 'page-1'],
    );
    assert.equal(first.cut, true);
    const human = listCli(data, '--limit', '2');
    assert.match(
      human.stderr,
      new RegExp(
        `^mxguard: reports list: 2 of 5 reports listed; --all lists every one, --cursor ${first.nextCursor} the next ones$`,
        'm',
      ),
    );
    const all = JSON.parse(listCli(data, '--limit', '2', '--all', '--json').stdout);
    assert.equal(all.reports.length, 5);
    assert.equal(all.cut, false);
    const bad = listCli(data, '--cursor', 'nonsense');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /cursor/);
  });

  it('reports show: a summary with escaped, clipped values; --json the whole report', async () => {
    const { data, ids } = await withLegacy();
    const r = runCli(['reports', 'show', String(ids[0]), '--data-dir', data]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, UNSAFE);
    assert.ok(r.stdout.length < 3000, `${r.stdout.length} characters printed`);
    assert.match(r.stdout, /^report #\d+: \\u\{202e\}RRR+\.\.\. \(1048577 characters\)$/m);
    assert.match(r.stdout, /organization: +Evil\\u\{202e\}gpj/);
    assert.match(r.stdout, /\\u\{202e\}ttt+\.\.\. \(1048577 characters\): 2/);
    // --json prints megabytes: more than runCli's default buffer
    const whole = spawnSync(
      process.execPath,
      [BIN, 'reports', 'show', String(ids[0]), '--data-dir', data, '--json'],
      {
        encoding: 'utf8',
        maxBuffer: 64 * MIB,
      },
    );
    assert.equal(whole.status, 0, whole.stderr);
    const json = JSON.parse(whole.stdout);
    assert.equal(json.reportId, `\u202e${'R'.repeat(MIB)}`, '--json: the whole value');
    assert.equal(json.report.policies[0].failures[0].count, 2);
    const missing = runCli(['reports', 'show', '999', '--data-dir', data]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no report 999/);
    assert.equal(runCli(['reports', 'show', 'abc', '--data-dir', data]).code, 2);
  });
});

describe('reports delete and purge', () => {
  async function seededForPurge(): Promise<string> {
    const dir = fresh();
    const data = await storeIn(dir);
    const files = [
      ...[1, 2, 3].map((d) =>
        write(
          dir,
          `a${d}.json`,
          variant(`a-${d}`, (r) => (r['date-range']['start-datetime'] = `2024-04-0${d}T00:00:00Z`)),
        ),
      ),
      ...[1, 2].map((d) =>
        write(
          dir,
          `b${d}.json`,
          variant(`b-${d}`, (r) => {
            r['date-range']['start-datetime'] = `2024-04-0${d}T00:00:00Z`;
            r.policies[0].policy['policy-domain'] = 'other.example';
            r.policies = [r.policies[0]];
          }),
        ),
      ),
    ];
    assert.equal(importCli(data, ...files).code, 0);
    return data;
  }
  const ids = (data: string) =>
    JSON.parse(listCli(data, '--json').stdout)
      .reports.map((x: { reportId: string }) => x.reportId)
      .sort();

  it('reports delete ID...: deleted with their rows; an unknown id is exit 1, a bad one exit 2', async () => {
    const data = await seededForPurge();
    const r = runCli(['reports', 'delete', '1', '2', '--data-dir', data]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'deleted report 1\ndeleted report 2\n');
    assert.deepEqual(rowsOfReport(data, 1), { reports: 0, policies: 0, failures: 0 });
    assert.deepEqual(ids(data), ['a-3', 'b-1', 'b-2']);
    const again = runCli(['reports', 'delete', '2', '3', '--data-dir', data, '--json']);
    assert.equal(again.code, 1);
    assert.deepEqual(JSON.parse(again.stdout), { deleted: [3], notFound: [2] });
    const human = runCli(['reports', 'delete', '2', '--data-dir', data]);
    assert.equal(human.code, 1);
    assert.match(human.stderr, /no report 2/);
    assert.equal(runCli(['reports', 'delete', 'x1', '--data-dir', data]).code, 2);
    assert.equal(runCli(['reports', 'delete', '--data-dir', data]).code, 2);
  });

  it('reports purge --domain / --before / both, with --dry-run and --json: exact counts', async () => {
    const data = await seededForPurge();
    const purge = (...args: string[]) => runCli(['reports', 'purge', ...args, '--data-dir', data]);
    const dry = purge('--domain', 'receiver.example', '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.stdout, '3 reports would be deleted (dry run: nothing deleted)\n');
    assert.deepEqual(JSON.parse(purge('--before', '2024-04-03', '--dry-run', '--json').stdout), {
      dryRun: true,
      reports: 4,
      tlsrpt: 4,
      dmarc: 0,
    });
    assert.equal(ids(data).length, 5, 'a dry run deletes nothing');
    const both = purge('--domain', 'other.example', '--before', '2024-04-02');
    assert.equal(both.code, 0, both.stderr);
    assert.equal(both.stdout, 'deleted 1 report\n');
    assert.deepEqual(ids(data), ['a-1', 'a-2', 'a-3', 'b-2']);
    assert.deepEqual(JSON.parse(purge('--before', '2024-04-03', '--json').stdout), {
      dryRun: false,
      reports: 3,
      tlsrpt: 3,
      dmarc: 0,
    });
    assert.deepEqual(ids(data), ['a-3']);
    const none = purge('--data-dir', data);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--domain or --before/);
    const badDate = purge('--before', 'last week');
    assert.equal(badDate.code, 2);
    assert.match(badDate.stderr, /before: "last week"/);
  });
});
