// `mxguard reports import` and `reports list` with both kinds (issue 15): the built command on a real
// store, with files of the shared corpus (test/fixtures/corpus/, copied from ../shared/corpus/dmarc and tlsrpt) as they arrive: a folder
// with DMARC reports (.xml, .xml.gz, .zip, .eml), TLS-RPT reports (.json, .json.gz, .eml) and junk.
// Expected numbers come from reading the files (counted by hand / with a script, see the table), not
// from our parser.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DMARC_CSV_COLUMNS } from '../../src/dmarc/csv.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { runCli } from '../helpers/cli.js';
import { CORPUS_DIR } from '../helpers/corpus.js';

const CORPUS = CORPUS_DIR;

/** DMARC files: organization, report id, policy domain, <record>s and the sum of <count> in the XML. */
const DMARC_FILES = [
  [
    'example.net!example.com!1529366400!1529452799.xml',
    'example.net',
    'b043f0e264cf4ea995e93765242f6dfb',
    'example.com',
    1,
    1,
  ],
  [
    'google.com!borschow.com!1549929600!1550015999.zip',
    'google.com',
    '949348866075514174',
    'borschow.com',
    1,
    1,
  ],
  [
    'fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz',
    'FastMail Pty Ltd',
    '102675056',
    'indemed.com',
    1,
    1,
  ],
  ['amazonses-report.eml', 'AMAZON-SES', '6b06c366-0631-4ca0-8337-f5aecf137918', 'stalw.art', 1, 1],
  [
    'zoho.com!example.com!1581753600!1581840000.xml',
    'zoho.com',
    'e2cb5d97-dcbb-470f-b2dd-45519a2abbb3',
    'example.com',
    8,
    9,
  ],
] as const;
const TLSRPT_FILES = [
  'rfc8460-example.json',
  'google.com!test.xmox.nl!1663200000!1663286399!001.json.gz',
  'microsoft-tlsrpt.eml',
];
/** Not reports: refused with a reason, kept in the rejected list. */
const JUNK = ['invalid_xml.xml', 'empty.xml'];

let root: string;
let counter = 0;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'mxguard-cli-reports-dmarc-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** A folder with both kinds and junk, and an empty store beside it. */
async function mailboxDump(): Promise<{ folder: string; data: string }> {
  const dir = join(root, `case-${++counter}`);
  const folder = join(dir, 'reports');
  mkdirSync(folder, { recursive: true });
  for (const [name] of DMARC_FILES) copyFileSync(join(CORPUS, 'dmarc', name), join(folder, name));
  for (const name of TLSRPT_FILES) copyFileSync(join(CORPUS, 'tlsrpt', name), join(folder, name));
  for (const name of JUNK) copyFileSync(join(CORPUS, 'dmarc', name), join(folder, name));
  writeFileSync(join(folder, 'notes.json'), 'not a report');
  writeFileSync(join(folder, 'README.txt'), 'skipped: not named like a report');
  const data = join(dir, 'data');
  await (await openSqliteStore(data)).close();
  return { folder, data };
}

const cli = (data: string, ...args: string[]) => runCli([...args, '--data-dir', data]);
const listJson = (data: string, ...args: string[]) => {
  const r = cli(data, 'reports', 'list', ...args, '--json');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
};

interface Listed {
  kind: string;
  id: number;
  organization: string;
  reportId: string;
  domain?: string;
  messages?: number;
  rows?: number;
}

describe('reports import: a folder with DMARC and TLS-RPT reports and junk', () => {
  it('stores both kinds, rejects the junk with a reason, and a second import adds nothing', async () => {
    const { folder, data } = await mailboxDump();
    const first = cli(data, 'reports', 'import', folder, '--json');
    assert.equal(first.code, 1, first.stderr); // some input was rejected
    const out = JSON.parse(first.stdout);
    assert.deepEqual(out.summary, {
      stored: DMARC_FILES.length + TLSRPT_FILES.length,
      alreadyStored: 0,
      rejected: JUNK.length + 1,
      unreadable: 0,
      skipped: 1,
    });
    const byFile = new Map<string, { status: string; code?: string; reports?: Listed[] }>(
      out.files.map((f: { path: string }) => [f.path.slice(folder.length + 1), f]),
    );
    for (const [name, organization, reportId] of DMARC_FILES) {
      assert.deepEqual(
        byFile.get(name)?.reports?.map((s) => [s.kind, s.organization, s.reportId]),
        [['dmarc', organization, reportId]],
        name,
      );
    }
    for (const name of TLSRPT_FILES) {
      assert.deepEqual(
        byFile.get(name)?.reports?.map((s) => s.kind),
        ['tlsrpt'],
        name,
      );
    }
    // Junk that looks like XML is refused by the DMARC reader; other junk by the TLS-RPT reader.
    assert.match(byFile.get('invalid_xml.xml')?.code ?? '', /^DMARC_/);
    assert.match(byFile.get('empty.xml')?.code ?? '', /^(DMARC|TLSRPT)_/);
    assert.match(byFile.get('notes.json')?.code ?? '', /^TLSRPT_/);

    const rejected = listJson(data, '--rejected').rejected as Array<{ submitter: string; reason: string }>;
    assert.deepEqual(rejected.map((r) => r.submitter.slice(folder.length + 1)).sort(), [
      'empty.xml',
      'invalid_xml.xml',
      'notes.json',
    ]);
    for (const r of rejected) assert.ok(r.reason.length > 0);

    const again = cli(data, 'reports', 'import', folder, '--json');
    const summary = JSON.parse(again.stdout).summary;
    assert.equal(summary.stored, 0);
    assert.equal(summary.alreadyStored, DMARC_FILES.length + TLSRPT_FILES.length);
    assert.equal(listJson(data, '--kind', 'dmarc').total, DMARC_FILES.length);

    const human = cli(data, 'reports', 'import', join(folder, DMARC_FILES[0][0]));
    assert.match(
      human.stdout,
      /already stored: DMARC report "b043f0e264cf4ea995e93765242f6dfb" from example\.net/,
    );
  });
});

describe('reports list --kind, --limit/--all, --format csv', () => {
  let data: string;
  before(async () => {
    ({ data } = await mailboxDump());
    cli(data, 'reports', 'import', join(data, '..', 'reports'));
  });

  it('--kind dmarc lists the DMARC reports with their sums; --kind tlsrpt the others; all: both', () => {
    const dmarc = listJson(data, '--kind', 'dmarc');
    assert.equal(dmarc.total, DMARC_FILES.length);
    assert.equal(dmarc.cut, false);
    const seen = new Map((dmarc.reports as Listed[]).map((r) => [r.reportId, r]));
    for (const [, organization, reportId, domain, rows, messages] of DMARC_FILES) {
      const r = seen.get(reportId);
      assert.ok(r, reportId);
      assert.deepEqual(
        [r.kind, r.organization, r.domain, r.rows, r.messages],
        ['dmarc', organization, domain.toLowerCase(), rows, messages],
      );
    }
    const tlsrpt = listJson(data, '--kind', 'tlsrpt');
    assert.equal(tlsrpt.total, TLSRPT_FILES.length);
    assert.ok((tlsrpt.reports as Listed[]).every((r) => r.kind === 'tlsrpt'));
    const both = listJson(data);
    assert.equal(both.total, DMARC_FILES.length + TLSRPT_FILES.length);
    assert.equal(both.reports.length, both.total);

    const human = cli(data, 'reports', 'list');
    assert.match(human.stdout, /^TLS-RPT reports:$/m);
    assert.match(human.stdout, /^DMARC reports:$/m);
    assert.match(
      human.stdout,
      /^ID\s+PERIOD\s+ORGANIZATION\s+REPORT ID\s+DOMAIN\s+MESSAGES\s+DMARC PASS\s+ROWS\s+SOURCE$/m,
    );
  });

  it('pages through both kinds with one cursor, newest first, and says on stderr when it cut', () => {
    const all = listJson(data, '--all', '--limit', '2');
    assert.equal(all.cut, false);
    assert.equal(all.nextCursor, null);
    const key = (r: Listed & { start?: string; begin?: string }) => Date.parse(r.start ?? r.begin ?? '');
    const keys = (all.reports as Listed[]).map(key);
    assert.deepEqual(
      keys,
      [...keys].sort((a, b) => b - a),
    );

    const paged: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const args: string[] = [
        'reports',
        'list',
        '--limit',
        '3',
        '--json',
        ...(cursor ? ['--cursor', cursor] : []),
      ];
      const r = cli(data, ...args);
      assert.equal(r.code, 0, r.stderr);
      const page = JSON.parse(r.stdout);
      assert.equal(page.total, DMARC_FILES.length + TLSRPT_FILES.length);
      assert.equal(page.cut, page.nextCursor !== null);
      if (page.cut)
        assert.match(
          r.stderr,
          /^mxguard: reports list: 3 of 8 reports listed; --all lists every one, --cursor both:\S+ the next ones$/m,
        );
      else assert.equal(r.stderr, '');
      paged.push(...page.reports.map((x: Listed) => `${x.kind}:${x.id}`));
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== null && pages < 10);
    assert.equal(pages, 3);
    assert.deepEqual(
      paged,
      (all.reports as Listed[]).map((x) => `${x.kind}:${x.id}`),
    );

    const wrongKind = cli(data, 'reports', 'list', '--kind', 'dmarc', '--cursor', 'both:W251bGwsbnVsbF0');
    assert.equal(wrongKind.code, 2);
    const badBoth = cli(data, 'reports', 'list', '--cursor', 'both:bm9uc2Vuc2U');
    assert.equal(badBoth.code, 2);
    assert.match(badBoth.stderr, /--cursor: not a cursor/);
  });

  it('show --kind dmarc shows a DMARC report; delete --kind dmarc deletes from the DMARC list only', async () => {
    const zoho = (listJson(data, '--kind', 'dmarc').reports as Listed[]).find(
      (r) => r.organization === 'zoho.com',
    );
    assert.ok(zoho);
    const shown = cli(data, 'reports', 'show', '--kind', 'dmarc', String(zoho.id));
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^DMARC report #\d+: e2cb5d97-dcbb-470f-b2dd-45519a2abbb3$/m);
    assert.match(shown.stdout, /messages: +9 in 8 rows/);
    const json = JSON.parse(
      cli(data, 'reports', 'show', '--kind', 'dmarc', String(zoho.id), '--json').stdout,
    );
    assert.equal(json.kind, 'dmarc');
    assert.equal(json.report.records.length, 8);
    assert.equal(cli(data, 'reports', 'show', '--kind', 'dmarc', '999999').code, 1);
    assert.equal(cli(data, 'reports', 'show', '--kind', 'spf', '1').code, 2);

    const other = await mailboxDump();
    cli(other.data, 'reports', 'import', other.folder);
    const before = listJson(other.data);
    const removed = cli(other.data, 'reports', 'delete', '--kind', 'dmarc', '1', '--json');
    assert.equal(removed.code, 0, removed.stderr);
    assert.deepEqual(JSON.parse(removed.stdout), { deleted: [1], notFound: [] });
    assert.equal(listJson(other.data, '--kind', 'dmarc').total, DMARC_FILES.length - 1);
    assert.equal(listJson(other.data, '--kind', 'tlsrpt').total, TLSRPT_FILES.length);
    assert.equal(listJson(other.data).total, before.total - 1);
  });

  it('purge --kind dmarc: by policy domain and by the start of the range; --kind all (default) purges both', async () => {
    const other = await mailboxDump();
    cli(other.data, 'reports', 'import', other.folder);
    const purge = (...args: string[]) => {
      const r = cli(other.data, 'reports', 'purge', ...args, '--json');
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout);
    };
    // example.com: the example.net and zoho.com reports (policy domain), nothing of TLS-RPT is asked for.
    assert.deepEqual(purge('--kind', 'dmarc', '--domain', 'example.com', '--dry-run'), {
      dryRun: true,
      reports: 2,
      tlsrpt: 0,
      dmarc: 2,
    });
    // Ranges starting in 2018 (example.net, fastmail.com); the dry run above deleted nothing.
    assert.deepEqual(purge('--kind', 'dmarc', '--before', '2019-01-01'), {
      dryRun: false,
      reports: 2,
      tlsrpt: 0,
      dmarc: 2,
    });
    const left = (listJson(other.data, '--kind', 'dmarc').reports as Listed[])
      .map((r) => r.organization)
      .sort();
    assert.deepEqual(left, ['AMAZON-SES', 'google.com', 'zoho.com']);
    assert.equal(listJson(other.data, '--kind', 'tlsrpt').total, TLSRPT_FILES.length);
    assert.deepEqual(purge('--before', '2030-01-01'), {
      dryRun: false,
      reports: TLSRPT_FILES.length + 3,
      tlsrpt: TLSRPT_FILES.length,
      dmarc: 3,
    });
    assert.equal(listJson(other.data).total, 0);
    assert.equal(cli(other.data, 'reports', 'purge', '--kind', 'spf', '--before', '2030-01-01').code, 2);
  });

  it("--format csv: parsedmarc's columns, one line per record of every DMARC report", () => {
    const r = cli(data, 'reports', 'list', '--kind', 'dmarc', '--all', '--format', 'csv');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\r\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines[0], DMARC_CSV_COLUMNS.join(','));
    assert.equal(
      lines.length - 1,
      DMARC_FILES.reduce((sum, f) => sum + f[4], 0),
    );
    const column = (name: string) => DMARC_CSV_COLUMNS.indexOf(name as never);
    const zoho = lines
      .slice(1)
      .map((l) => l.split(','))
      .filter((cells) => cells[column('org_name')] === 'zoho.com');
    assert.equal(zoho.length, 8);
    assert.equal(
      zoho.reduce((sum, cells) => sum + Number(cells[column('count')]), 0),
      9,
    );
    for (const cells of zoho) {
      assert.equal(cells[column('begin_date')], '2020-02-15 08:00:00');
      assert.match(cells[column('dmarc_aligned')]!, /^(True|False)$/);
    }

    const notDmarc = cli(data, 'reports', 'list', '--format', 'csv');
    assert.equal(notDmarc.code, 2);
    assert.match(notDmarc.stderr, /--kind dmarc/);
    const badKind = cli(data, 'reports', 'list', '--kind', 'spf');
    assert.equal(badKind.code, 2);
    assert.match(badKind.stderr, /--kind: expected tlsrpt, dmarc, all/);
  });
});
