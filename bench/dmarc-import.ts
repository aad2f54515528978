// Importing DMARC aggregate reports (issue 15): `mxguard reports import DIR` into its SQLite store against
// Debian's dmarcts-report-parser (Perl, `-z`: zip and gzip files) into PostgreSQL 15 on loopback, both
// given the same generated files in the same run. Reports a second (wall clock, the whole command,
// start-up included), the CPU seconds (user + system, GNU time's %U + %S: on a machine shared with other
// work the wall clock follows the others' load, the CPU time much less) and peak RSS of the importing
// process (GNU time's %M; the peer's PostgreSQL server is a separate process and not counted, our SQLite
// is in-process and counted), and the load average before each side ran.
//
// The reports: `--count` (default 10,000), half .xml.gz, half .zip, sizes mixed by a seeded PRNG: 80 %
// with 1-4 <record>s, 18 % with 10-40, 2 % with 200-500; 8 reporters, 20 policy domains, one day each.
//
//   npx tsc -p tsconfig.json
//   node --import tsx bench/dmarc-import.ts --count 10000
//
// While working on the import: `--ours-only` skips the peer (a quick figure, not a result), and `--files
// DIR` generates the reports into DIR once and reads them from there on later runs.
//
// Needs root (initdb runs as the postgres user), the Debian packages dmarcts-report-parser and
// libdbd-pg-perl, and PostgreSQL 15's binaries (/usr/lib/postgresql/15/bin). Markdown on stdout.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateRawSync, gunzipSync, gzipSync, inflateRawSync } from 'node:zlib';
import { openSqliteStore } from '../src/store/sqlite.js';

const BIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const PG = '/usr/lib/postgresql/15/bin';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const COUNT = Number(option('--count', '10000'));
const PG_PORT = Number(option('--pg-port', '55432'));
/** `--ours-only`: no peer (a quick measure while working on the import; not a result for BENCHMARKS.md). */
const OURS_ONLY = process.argv.includes('--ours-only');
/** `--files DIR`: the reports are generated into DIR and kept (or, when DIR exists, taken from it as they are). */
const FILES = option('--files', '');

/** mulberry32: the same files every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ORGS = ['google.com', 'Yahoo', 'Outlook.com', 'Mail.Ru', 'Fastmail', 'zoho.com', 'web.de', 'Mimecast'];

function reportXml(i: number, random: () => number): string {
  const roll = random();
  const records =
    roll < 0.8
      ? 1 + Math.floor(random() * 4)
      : roll < 0.98
        ? 10 + Math.floor(random() * 31)
        : 200 + Math.floor(random() * 301);
  const begin = 1_767_225_600 + (i % 365) * 86_400;
  const domain = `example${i % 20}.com`;
  const rows: string[] = [];
  for (let r = 0; r < records; r++) {
    const pass = random() < 0.7;
    const ip = `198.51.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}`;
    rows.push(`  <record>
    <row>
      <source_ip>${ip}</source_ip>
      <count>${1 + Math.floor(random() * 50)}</count>
      <policy_evaluated><disposition>${pass ? 'none' : random() < 0.5 ? 'quarantine' : 'reject'}</disposition><dkim>${pass ? 'pass' : 'fail'}</dkim><spf>${pass ? 'pass' : 'fail'}</spf></policy_evaluated>
    </row>
    <identifiers><header_from>${domain}</header_from></identifiers>
    <auth_results>
      <dkim><domain>${domain}</domain><selector>s1</selector><result>${pass ? 'pass' : 'fail'}</result></dkim>
      <spf><domain>${domain}</domain><scope>mfrom</scope><result>${pass ? 'pass' : 'softfail'}</result></spf>
    </auth_results>
  </record>`);
  }
  return `<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>${ORGS[i % ORGS.length]}</org_name>
    <email>dmarc-reports@reporter${i % ORGS.length}.example</email>
    <report_id>bench-${i}</report_id>
    <date_range><begin>${begin}</begin><end>${begin + 86_399}</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>${domain}</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp><pct>100</pct>
  </policy_published>
${rows.join('\n')}
</feedback>
`;
}

/** A zip archive with one deflated file (PKWARE APPNOTE 4.3: local header, data, central directory, end). */
function zipOne(name: string, content: Buffer): Buffer {
  const data = deflateRawSync(content);
  const crc = crc32(content);
  const nameBytes = Buffer.from(name);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(content.length, 22);
  local.writeUInt16LE(nameBytes.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(content.length, 24);
  central.writeUInt16LE(nameBytes.length, 28);
  const centralStart = local.length + nameBytes.length + data.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + nameBytes.length, 12);
  end.writeUInt32LE(centralStart, 16);
  return Buffer.concat([local, nameBytes, data, central, nameBytes, end]);
}

/** What generate would have said of the files already in `dir`. */
function counted(dir: string): { bytes: number; xmlBytes: number; records: number } {
  let bytes = 0;
  let xmlBytes = 0;
  let records = 0;
  for (const name of readdirSync(dir)) {
    const file = readFileSync(join(dir, name));
    const xml = name.endsWith('.gz')
      ? gunzipSync(file)
      : inflateRawSync(file.subarray(30 + file.readUInt16LE(26)));
    bytes += file.length;
    xmlBytes += xml.length;
    records += xml.toString().split('<record>').length - 1;
  }
  return { bytes, xmlBytes, records };
}

function generate(dir: string): { bytes: number; xmlBytes: number; records: number } {
  mkdirSync(dir, { recursive: true });
  const random = prng(15);
  let bytes = 0;
  let xmlBytes = 0;
  let records = 0;
  for (let i = 0; i < COUNT; i++) {
    const xml = Buffer.from(reportXml(i, random));
    records += xml.toString().split('<record>').length - 1;
    const base = `${ORGS[i % ORGS.length]}!example${i % 20}.com!${i}`;
    const file = i % 2 === 0 ? gzipSync(xml) : zipOne(`${base}.xml`, xml);
    writeFileSync(join(dir, `${base}.${i % 2 === 0 ? 'xml.gz' : 'zip'}`), file);
    bytes += file.length;
    xmlBytes += xml.length;
  }
  return { bytes, xmlBytes, records };
}

interface Measured {
  seconds: number;
  cpuSeconds: number;
  maxRssKiB: number;
  stored: number;
  /** The 1-minute load average when the command started. */
  load: number;
}

/** Run `command` under GNU time; wall clock from here, peak RSS from time's %M. */
function timed(command: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const load = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  const start = process.hrtime.bigint();
  const run = spawnSync('/usr/bin/time', ['-f', 'MAXRSS %M CPU %U %S', ...command], {
    encoding: 'utf8',
    maxBuffer: 512 * 1024 * 1024,
    ...options,
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const rss = /MAXRSS (\d+) CPU ([\d.]+) ([\d.]+)/.exec(run.stderr ?? '');
  if (!rss) throw new Error(`${command[0]} failed (${run.status}): ${(run.stderr ?? '').slice(-2000)}`);
  const cpuSeconds = Number(rss[2]) + Number(rss[3]);
  return {
    seconds,
    cpuSeconds,
    load,
    maxRssKiB: Number(rss[1]),
    stdout: run.stdout,
    stderr: run.stderr,
    status: run.status,
  };
}

function measured(run: ReturnType<typeof timed>): Omit<Measured, 'stored'> {
  return { seconds: run.seconds, cpuSeconds: run.cpuSeconds, maxRssKiB: run.maxRssKiB, load: run.load };
}

async function ours(files: string, work: string): Promise<Measured> {
  const data = join(work, 'ours-data');
  await (await openSqliteStore(data)).close();
  const run = timed([process.execPath, BIN, 'reports', 'import', files, '--data-dir', data, '--json']);
  const summary = JSON.parse(run.stdout).summary;
  if (summary.rejected > 0 || summary.unreadable > 0) throw new Error(`ours: ${JSON.stringify(summary)}`);
  return { ...measured(run), stored: summary.stored };
}

function sh(command: string, args: string[], asUser?: string): string {
  const run = asUser
    ? spawnSync('su', [asUser, '-s', '/bin/sh', '-c', [command, ...args.map((a) => `'${a}'`)].join(' ')], {
        encoding: 'utf8',
      })
    : spawnSync(command, args, { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${run.stderr}`);
  return run.stdout;
}

async function peer(files: string, work: string): Promise<Measured> {
  const pgdata = join(work, 'pg');
  mkdirSync(pgdata);
  chmodSync(work, 0o755);
  sh('chown', ['postgres', pgdata]);
  sh(`${PG}/initdb`, ['-D', pgdata, '--auth=trust', '-U', 'postgres'], 'postgres');
  sh(
    `${PG}/pg_ctl`,
    ['-D', pgdata, '-o', `-h 127.0.0.1 -p ${PG_PORT} -k ${pgdata}`, '-l', `${pgdata}/log`, '-w', 'start'],
    'postgres',
  );
  try {
    sh(`${PG}/createdb`, ['-h', '127.0.0.1', '-p', String(PG_PORT), '-U', 'postgres', 'dmarc']);
    const peerDir = join(work, 'peer');
    mkdirSync(peerDir);
    writeFileSync(
      join(peerDir, 'dmarcts-report-parser.conf'),
      `$dbtype = 'Pg'; $dbname = 'dmarc'; $dbuser = 'postgres'; $dbpass = ''; $dbhost = '127.0.0.1';
$dbport = '${PG_PORT}'; $imapreadfolder = 'dmarc'; $delete_reports = 0; $maxsize_xml = 50000;
$compress_xml = 0; $delete_failed = 0; $debug = 0; $db_tx_support = 1;
1;
`,
    );
    const run = timed(['/usr/sbin/dmarcts-report-parser', '-z', `${files}/*`], { cwd: peerDir });
    if (run.status !== 0) throw new Error(`peer exit ${run.status}: ${run.stderr.slice(-2000)}`);
    const stored = Number(
      sh(`${PG}/psql`, [
        '-h',
        '127.0.0.1',
        '-p',
        String(PG_PORT),
        '-U',
        'postgres',
        '-tAc',
        'select count(*) from report',
        'dmarc',
      ]).trim(),
    );
    return { ...measured(run), stored };
  } finally {
    sh(`${PG}/pg_ctl`, ['-D', pgdata, '-m', 'fast', '-w', 'stop'], 'postgres');
  }
}

function steal(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return cpu[7] ?? 0;
}

async function compare(
  a: Measured,
  made: { bytes: number; xmlBytes: number; records: number },
  stealBefore: number,
): Promise<void> {
  const b = await peer(FILES || join(work, 'reports'), work);
  process.stderr.write(`peer: ${JSON.stringify(b)}\n`);
  const stealTicks = steal() - stealBefore;
  const rate = (m: Measured) => m.stored / m.seconds;
  console.log(
    `| | reports stored | seconds | reports/s | CPU s | reports per CPU s | peak RSS (MiB) | load before |`,
  );
  console.log(`|---|---|---|---|---|---|---|---|`);
  for (const [name, m] of [
    ['mxguard reports import (SQLite)', a],
    ['dmarcts-report-parser -z (PostgreSQL 15)', b],
  ] as const) {
    console.log(
      `| ${name} | ${m.stored} | ${m.seconds.toFixed(1)} | ${rate(m).toFixed(0)} | ${m.cpuSeconds.toFixed(1)} | ${(m.stored / m.cpuSeconds).toFixed(0)} | ${(m.maxRssKiB / 1024).toFixed(0)} | ${m.load.toFixed(1)} |`,
    );
  }
  console.log(
    `\n${COUNT} reports (${made.records} records; ${(made.bytes / 1048576).toFixed(1)} MiB as files, ${(made.xmlBytes / 1048576).toFixed(1)} MiB of XML): ` +
      `throughput ratio ${(rate(a) / rate(b)).toFixed(1)}x, per CPU second ${(a.stored / a.cpuSeconds / (b.stored / b.cpuSeconds)).toFixed(1)}x, peak RSS ratio ${(a.maxRssKiB / b.maxRssKiB).toFixed(2)} (ours / peer); ` +
      `CPU steal during the runs: ${stealTicks} ticks`,
  );
}

const work = mkdtempSync(join(tmpdir(), 'mxguard-bench-dmarc-'));
try {
  const files = FILES || join(work, 'reports');
  const made = FILES && existsSync(FILES) ? counted(FILES) : generate(files);
  process.stderr.write(
    `generated ${COUNT} reports, ${made.records} records, ${made.bytes} bytes (${made.xmlBytes} of XML)\n`,
  );
  const stealBefore = steal();
  const a = await ours(files, work);
  process.stderr.write(`ours: ${JSON.stringify(a)}\n`);
  if (OURS_ONLY) {
    console.log(
      `ours: ${a.stored} reports in ${a.seconds.toFixed(2)} s: ${(a.stored / a.seconds).toFixed(0)} reports/s, ${a.cpuSeconds.toFixed(2)} CPU s, ${(a.maxRssKiB / 1024).toFixed(0)} MiB, load before ${a.load.toFixed(1)}`,
    );
  } else {
    await compare(a, made, stealBefore);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
