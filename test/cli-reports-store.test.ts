// `mxguard reports import` and `mxguard reports list`: the built command on a real store.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { openSqliteStore } from '../src/store/sqlite.js';
import {
  type EditableJson,
  reportEmail,
  reportGzip,
  reportJson,
  reportObject,
} from './fixtures/tlsrpt/build.js';
import { runCli } from './helpers/cli.js';

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

const importCli = (data: string, ...args: string[]) =>
  runCli(['reports', 'import', ...args, '--data-dir', data]);
const listCli = (data: string, ...args: string[]) => runCli(['reports', 'list', ...args, '--data-dir', data]);

describe('reports import: files', () => {
  it('stores .json, .json.gz and .eml (every report inside); a repeat is "already stored"', () => {
    const dir = fresh();
    const data = join(dir, 'data');
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
          reports: [{ id: 2, created: false, organization: 'Sender Mail Co', reportId: 'gz-1' }],
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
    const data = join(dir, 'data');
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

  it('input that is not a report: rejected with the reason, printed, kept in the rejected list, exit 1', () => {
    const dir = fresh();
    const data = join(dir, 'data');
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

  it('an unreadable path is exit 2, and every other path is still imported', () => {
    const dir = fresh();
    const data = join(dir, 'data');
    const good = write(dir, 'good.json', reportJson);
    const missing = join(dir, 'missing.json');
    const notes = write(dir, 'notes.txt', 'text');
    const r = importCli(data, missing, good, notes);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`^${missing}: cannot read: no such file or folder$`, 'm'));
    assert.match(r.stdout, /^1 stored, 0 already stored, 1 rejected, 1 unreadable$/m);
  });

  it('a file over the intake size cap is rejected without being read', () => {
    const dir = fresh();
    const data = join(dir, 'data');
    const big = write(dir, 'big.json', Buffer.alloc(10 * 1024 * 1024 + 1, 0x20));
    const r = importCli(data, big);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /rejected \[TLSRPT_TOO_LARGE\]: the input is 10485761 bytes/);
  });
});

describe('reports import: Maildir and folders', () => {
  it('a Maildir: every message in cur/ and new/, not tmp/; nothing is moved', () => {
    const dir = fresh();
    const data = join(dir, 'data');
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

  it('another folder is walked: report-named files and Maildirs inside; others skipped and counted', () => {
    const dir = fresh();
    const data = join(dir, 'data');
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
    const data = join(dir, 'data');
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
    const reports = JSON.parse(r.stdout).reports;
    assert.deepEqual(
      reports.map((x: { reportId: string }) => x.reportId),
      ['other', FIXTURE_ID, 'first'], // the same start: the later stored first
    );
    const { receivedAt, ...rest } = reports[1];
    assert.match(receivedAt, /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(rest, {
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

  it('an empty store says so; bad options are exit 2', () => {
    const data = join(fresh(), 'data');
    assert.equal(listCli(data).stdout, 'no reports stored\n');
    const since = listCli(data, '--since', 'yesterday');
    assert.equal(since.code, 2);
    assert.match(since.stderr, /since: "yesterday" is not an ISO date or timestamp/);
    const limit = listCli(data, '--limit', '0');
    assert.equal(limit.code, 2);
    assert.match(limit.stderr, /--limit: must be between 1 and 10000/);
  });

  it('--help has examples and the exit status', () => {
    for (const sub of ['list', 'import']) {
      const r = runCli(['reports', sub, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`mxguard reports ${sub} `));
      assert.match(r.stdout, /Exit status: 0/);
    }
  });
});
