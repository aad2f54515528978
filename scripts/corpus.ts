// Dev check: run the built command over the shared real-world corpus (../shared/corpus when it exists)
// and print how many labels we agree with. `npm run corpus [-- CORPUS_DIR]`. Exit 1 on any disagreement.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../test/helpers/cli.js';

const corpus = process.argv[2] ?? new URL('../../shared/corpus', import.meta.url).pathname;
if (!existsSync(corpus)) {
  console.log(`no corpus at ${corpus}; nothing to check`);
  process.exit(0);
}

let disagreements = 0;
function tally(
  section: string,
  results: Array<{ name: string; ok: boolean; detail: string }>,
  disputed = 0,
): void {
  const bad = results.filter((r) => !r.ok);
  disagreements += bad.length;
  const extra = disputed ? `, ${disputed} DISPUTED not counted` : '';
  console.log(`${section}: ${results.length - bad.length}/${results.length} agree${extra}`);
  for (const r of bad) console.log(`  DISAGREE ${r.name}: ${r.detail}`);
}

// MTA-STS policies: INDEX.tsv says VALID/INVALID per file; `policy validate` must exit 0/1.
{
  const rows = readFileSync(join(corpus, 'mtasts/INDEX.tsv'), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'));
  let disputed = 0;
  const results = [];
  for (const row of rows) {
    const [file, label = ''] = row.split('\t');
    if (label.startsWith('DISPUTED')) disputed++;
    const expected = label.startsWith('INVALID') ? 1 : 0;
    const r = runCli(['policy', 'validate', join(corpus, 'mtasts', file!)]);
    const ok = r.code === expected || label.startsWith('DISPUTED');
    results.push({ name: file!, ok, detail: `exit ${r.code}, expected ${expected}: ${r.stdout.trim()}` });
  }
  tally('mtasts policies', results, disputed);
}

// TXT records: records.tsv rows "record<TAB>valid|invalid<TAB>why [type; source]".
{
  const typeOf: Record<string, string> = {
    _dmarc: 'dmarc',
    '_mta-sts': 'mta-sts',
    '_smtp._tls': 'tlsrpt',
    spf: 'spf',
  };
  const unescapeField = (s: string) =>
    s.replace(/\\([trn\\])/g, (_, c: string) => ({ t: '\t', r: '\r', n: '\n', '\\': '\\' })[c]!);
  const rows = readFileSync(join(corpus, 'txt/records.tsv'), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'));
  const bySection = new Map<string, Array<{ name: string; ok: boolean; detail: string }>>();
  const disputedBySection = new Map<string, number>();
  for (const row of rows) {
    const [record = '', expected, why = ''] = row.split('\t');
    const tag = /\[([^;\]]+);/.exec(why)?.[1];
    const type = tag ? typeOf[tag] : undefined;
    if (!type) continue;
    const list = bySection.get(type) ?? [];
    bySection.set(type, list);
    if (why.startsWith('DISPUTED')) {
      disputedBySection.set(type, (disputedBySection.get(type) ?? 0) + 1);
      continue;
    }
    const r = runCli(['records', 'validate', '--type', type, '--', unescapeField(record)]);
    const want = expected === 'valid' ? 0 : 1;
    list.push({
      name: JSON.stringify(record),
      ok: r.code === want,
      detail: `exit ${r.code}: ${r.stdout.trim()}`,
    });
  }
  for (const [type, list] of bySection) tally(`${type} records`, list, disputedBySection.get(type));
}

// TLS-RPT reports: every file must be read (exit 0).
{
  const results = readdirSync(join(corpus, 'tlsrpt')).map((file) => {
    const r = runCli(['reports', 'parse', '--json', join(corpus, 'tlsrpt', file)]);
    return {
      name: file,
      ok: r.code === 0,
      detail: `exit ${r.code}: ${r.stderr.trim()}${r.stdout.slice(0, 300)}`,
    };
  });
  tally('tlsrpt reports', results);
}

// TLSA: the openssl danetest chain (generate), the never-valid anon leaf and iana.org records (verify).
{
  const dir = join(corpus, 'tlsa');
  const records = (file: string) =>
    readFileSync(join(dir, file), 'utf8')
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith(';'));
  const results = [];
  const certFor: Record<string, string> = {
    '3': 'openssl-danetest-example.com-leaf-ec.pem',
    '2-issuer': 'openssl-danetest-issuer-ca-ec.pem',
    '2-root': 'openssl-danetest-root-ca-ec.pem',
  };
  let section = '3';
  for (const line of readFileSync(join(dir, 'openssl-danetest-chain.tlsa.txt'), 'utf8').split('\n')) {
    if (line.includes('intermediate')) section = '2-issuer';
    if (line.includes('root CN=Root CA')) section = '2-root';
    if (!line.trim() || line.startsWith(';')) continue;
    const [usage, selector, mtype, hex] = line.split(/\s+/);
    const r = runCli([
      'tlsa',
      'generate',
      '--cert',
      join(dir, certFor[section]!),
      '--usage',
      usage!,
      '--selector',
      selector!,
      '--mtype',
      mtype!,
    ]);
    const got = r.stdout.trim().split(/\s+/).pop()?.toLowerCase();
    results.push({
      name: `generate ${line.slice(0, 40)}`,
      ok: got === hex!.toLowerCase(),
      detail: r.stdout + r.stderr,
    });
  }
  records('openssl-danetest-anon-never-valid.tlsa.txt').forEach((rec, i) => {
    const r = runCli([
      'tlsa',
      'verify',
      '--cert',
      join(dir, 'openssl-danetest-anon-never-valid-ec.pem'),
      '--record',
      rec,
    ]);
    const want = i < 4 ? 0 : 1;
    results.push({
      name: `verify anon #${i + 1}`,
      ok: r.code === want,
      detail: `exit ${r.code}: ${r.stdout}`,
    });
  });
  for (const rec of records('iana.org-wildcard-rsa4096-2014.tlsa.txt')) {
    const r = runCli([
      'tlsa',
      'verify',
      '--cert',
      join(dir, 'iana.org-wildcard-rsa4096-2014.pem'),
      '--record',
      rec,
    ]);
    results.push({
      name: `verify iana ${rec.slice(24, 50)}`,
      ok: r.code === 0,
      detail: `exit ${r.code}: ${r.stdout}`,
    });
  }
  for (const rec of records('presentation-format-parse-cases.txt')) {
    const r = runCli(['records', 'validate', '--type', 'tlsa', '--', rec]);
    results.push({
      name: `parse ${rec.slice(0, 50)}`,
      ok: r.code === 0,
      detail: `exit ${r.code}: ${r.stdout}`,
    });
  }
  tally('tlsa vectors', results);
}

console.log(disagreements === 0 ? 'corpus: all labels agree' : `corpus: ${disagreements} disagreement(s)`);
process.exit(disagreements === 0 ? 0 : 1);
