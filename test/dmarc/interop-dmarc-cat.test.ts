// Interop: decodeDmarcReports against Debian's dmarc-cat (Go, package dmarc-cat) on every report of the
// shared corpus (test/fixtures/corpus/, copied from ../shared/corpus/dmarc) that dmarc-cat can read. Per report, the messages in total, per
// disposition and per source IP, and the date range, must agree.
//
// How dmarc-cat is run: `dmarc-cat -N -j 1 -D FILE` inside `unshare -n` (a network namespace with nothing
// in it: dmarc-cat looks source IPs up even with -N, and this test must send nothing anywhere). -D prints
// the report as dmarc-cat parsed it (a Go struct) before any name resolution; its rows are
// {{IP COUNT {DISPOSITION DKIM SPF [reasons]}} ...}. The human table is not used for the per-IP counts:
// with -j 2 (its default) dmarc-cat pairs resolved names with the wrong rows (zoho.com's report shows
// 216.71.143.52 with count 2, which belongs to 216.71.148.247) — a dmarc-cat bug, not a disagreement.
// dmarc-cat wants report-style file names (org!domain!begin!end.ext) and reads .xml, .xml.gz and .zip,
// not e-mails: each file is copied under such a name into a temporary folder.
//
// Where the two differ (checked below, so that a change on either side shows):
// - dmarc-cat refuses ikea.com!… (unclosed <xs:schema> wrapper), invalid_utf_8.xml, and the Mimecast gzip
//   with a CRLF after the gzip member; we read them with a warning, as parsedmarc does: right for the user,
//   the reports are otherwise complete.
// - dmarc-cat reads invalid-report_with_upper_cased_pass.xml (it keeps "None"/"Pass" as strings); we refuse
//   it (RFC 7489 Appendix C's enumerations are lower case; the file is parsedmarc's invalid sample).
// - rfc9990-sample.xml: dmarc-cat keeps disposition "pass" (RFC 9990); we read it as "none" (no policy
//   applied), with a warning. Both are right in their terms; the count per disposition is compared with
//   "pass" mapped to "none".
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeDmarcReports } from '../../src/dmarc/parse.js';
import { CORPUS_DIR } from '../helpers/corpus.js';
import { requireCommand } from '../lab/dnssec.js';

const CORPUS = join(CORPUS_DIR, 'dmarc');

/** Corpus files dmarc-cat refuses that we read (with a warning) or refuse too. */
const DMARC_CAT_REFUSES = [
  'empty.xml',
  'ikea.com!example.de!1538690400!1538776800.xml',
  'invalid_utf_8.xml',
  'invalid_xml.xml',
  'mimecast.org!ab.id.au!1693353600!1693439999!157a5fe30ec76f4bc0d8bccfc96c118a167a1280fee7c7465af5115e73082e5e.xml.gz',
];
/** Corpus files dmarc-cat reads that we refuse on purpose (see the header). */
const WE_REFUSE = ['invalid-report_with_upper_cased_pass.xml'];

interface Counts {
  messages: number;
  byDisposition: Record<string, number>;
  bySourceIp: Record<string, number>;
  begin: string;
  end: string;
}

function add(into: Record<string, number>, key: string, count: number): void {
  into[key] = (into[key] ?? 0) + count;
}

interface CatResult {
  ok: boolean;
  counts?: Counts;
  error?: string;
}

function runDmarcCat(unshare: string, dmarcCat: string, path: string): CatResult {
  const r = spawnSync(unshare, ['-n', dmarcCat, '-N', '-j', '1', '-D', path], {
    encoding: 'latin1',
    timeout: 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  const dump = r.stderr.split('\n').find((line) => / report=\{/.test(line));
  if (r.status !== 0 || !dump) return { ok: false, error: r.stderr.split('\n').find((l) => /Error/.test(l)) };
  const counts: Counts = { messages: 0, byDisposition: {}, bySourceIp: {}, begin: '', end: '' };
  for (const [, ip, count, disposition] of dump.matchAll(/\{\{([^\s{}]+) (\d+) \{(\w*) \w* \w* /g)) {
    const n = Number(count);
    counts.messages += n;
    // RFC 9990's "pass" is "none" for us (see the header).
    add(counts.byDisposition, disposition === 'pass' ? 'none' : disposition!, n);
    add(counts.bySourceIp, ip!, n);
  }
  // "From 2020-02-15 08:00:00 +0000 UTC to 2020-02-16 08:00:00 +0000 UTC"
  const range = /^From (\S+ \S+) \+0000 UTC to (\S+ \S+) \+0000 UTC$/m.exec(r.stdout);
  assert.ok(range, `no date range in dmarc-cat's output for ${path}:\n${r.stdout}`);
  counts.begin = `${range[1]!.replace(' ', 'T')}Z`;
  counts.end = `${range[2]!.replace(' ', 'T')}Z`;
  return { ok: true, counts };
}

async function ourCounts(bytes: Buffer): Promise<Counts | undefined> {
  try {
    const { reports } = await decodeDmarcReports(bytes);
    const report = reports[0]!;
    const counts: Counts = {
      messages: 0,
      byDisposition: {},
      bySourceIp: {},
      begin: report.begin,
      end: report.end,
    };
    for (const row of report.records) {
      counts.messages += row.count;
      add(counts.byDisposition, row.disposition, row.count);
      add(counts.bySourceIp, row.sourceIp, row.count);
    }
    return counts;
  } catch {
    return undefined;
  }
}

describe('interop with dmarc-cat (Debian)', () => {
  let dir: string;
  let unshare: string;
  let dmarcCat: string;
  before(() => {
    unshare = requireCommand('unshare', 'util-linux');
    dmarcCat = requireCommand('dmarc-cat', 'dmarc-cat');
    const probe = spawnSync(unshare, ['-n', 'true'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      throw new Error(`"unshare -n" does not work here (it needs root): ${probe.stderr.trim()}`);
    }
    dir = mkdtempSync(join(tmpdir(), 'mxguard-dmarc-cat-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('per-report counts agree on every corpus report both read', async () => {
    const files = readdirSync(CORPUS)
      .filter((f) => !f.endsWith('.eml'))
      .sort();
    const catRefused: string[] = [];
    const weRefused: string[] = [];
    let compared = 0;
    for (const [i, file] of files.entries()) {
      const bytes = readFileSync(join(CORPUS, file));
      const ext =
        bytes[0] === 0x1f && bytes[1] === 0x8b
          ? 'xml.gz'
          : bytes.subarray(0, 2).toString() === 'PK'
            ? 'zip'
            : 'xml';
      const copy = join(dir, `corpus.example!report.example!0!${i}.${ext}`);
      copyFileSync(join(CORPUS, file), copy);
      const theirs = runDmarcCat(unshare, dmarcCat, copy);
      const ours = await ourCounts(bytes);
      if (!theirs.ok) catRefused.push(file);
      if (!ours) weRefused.push(file);
      if (!theirs.ok || !ours) continue;
      assert.deepEqual(ours, theirs.counts, file);
      compared++;
    }
    assert.deepEqual(catRefused, DMARC_CAT_REFUSES);
    assert.deepEqual(weRefused, ['empty.xml', 'invalid-report_with_upper_cased_pass.xml', 'invalid_xml.xml']);
    assert.equal(compared, files.length - DMARC_CAT_REFUSES.length - WE_REFUSE.length);
    assert.ok(compared >= 25, `compared ${compared} reports`);
  });
});
