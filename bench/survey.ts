// `mxguard check --file` at survey scale (issue 14): N lab domains on a real DNSSEC lab (knotd signing the zone,
// unbound validating, test/lab/dnssec.ts) and a few dozen lab SMTP servers with STARTTLS on loopback, shared
// between the domains (each domain has two MX hosts out of --mx-hosts; every third MX host has a DANE-EE TLSA
// record). Runs the built command (dist/cli/main.js) as a child and reports, per run: domains per second, SMTP
// connections made, peak RSS of the check process (VmHWM from /proc); with the run's caches (the default) at
// each --concurrency, and once with --no-cache; then a sample of the list through a plain shell loop of `dig` +
// `posttls-finger` (what an admin would script) for the ratio. Markdown on stdout, progress on stderr.
//
//   npx tsc -p tsconfig.json && node --import tsx bench/survey.ts [--domains 1000] [--mx-hosts 36]
//     [--concurrency 8,32,64,128] [--no-cache-concurrency 32 (0: no such run)] [--shell-sample 100] [--cpu-prof DIR]
//     [--max-old-space MB]   (the check process's V8 heap limit: a run that completes in it kept memory bounded)
//
// Needs root (the DNSSEC lab binds port 53 on 127.0.54.1/2) and the Debian packages knot, unbound, bind9-dnsutils
// (dig) and postfix (posttls-finger). Everything stays on loopback (127.0.54.x DNS, 127.0.55.x SMTP); the lab is
// stopped and its files removed at the end. Note: unbound's cache is cold for the first run only; the runs
// are ordered cached runs first, so the --no-cache run (and the shell loop) get the warmer resolver.
import { spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TestPki } from '../test/helpers/pki.js';
import { startDnssecLab } from '../test/lab/dnssec.js';
import { labCert } from '../test/lab/https-server.js';
import { type LabSmtpServer, startSmtpServer } from '../test/lab/smtp-server.js';

const { values: args } = parseArgs({
  options: {
    domains: { type: 'string', default: '1000' },
    'mx-hosts': { type: 'string', default: '36' },
    concurrency: { type: 'string', default: '8,32,64,128' },
    'no-cache-concurrency': { type: 'string', default: '32' },
    'shell-sample': { type: 'string', default: '100' },
    'cpu-prof': { type: 'string' },
    'max-old-space': { type: 'string' },
  },
});
const N = Number(args.domains);
const M = Number(args['mx-hosts']);
const BIN = new URL('../dist/cli/main.js', import.meta.url).pathname;
const log = (text: string) => process.stderr.write(`${text}\n`);

const mxAddress = (k: number) => `127.0.55.${k + 1}`;
const domainOf = (i: number) => `d${i}.survey.test`;
/** Two MX hosts per domain, spread so every MX host is shared by about 2N/M domains. */
const mxOf = (i: number) => [i % M, (i * 7 + 3) % M].filter((k, j, all) => all.indexOf(k) === j);

interface RunResult {
  label: string;
  seconds: number;
  domainsPerSecond: number;
  smtpConnections: number;
  peakRssMb: number;
  /** CPU time of the check process (user + system), seconds. */
  cpuSeconds: number;
  statuses: Record<string, number>;
}

async function main(): Promise<void> {
  const pki = TestPki.create();
  const root = pki.issue('root', { ca: true });
  const leaf = pki.issue('mx', {
    issuer: root,
    sans: Array.from({ length: M }, (_, k) => `mx${k}.survey.test`),
  });
  const spki = createHash('sha256')
    .update(new X509Certificate(leaf.pem).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');

  const records: string[] = [];
  for (let k = 0; k < M; k++) {
    records.push(`mx${k} A ${mxAddress(k)}`);
    if (k % 3 === 0) records.push(`_25._tcp.mx${k} TLSA 3 1 1 ${spki}`);
  }
  for (let i = 0; i < N; i++) {
    const d = `d${i}`;
    for (const [j, k] of mxOf(i).entries()) records.push(`${d} MX ${10 * (j + 1)} mx${k}`);
    records.push(`${d} TXT "v=spf1 mx -all"`);
    records.push(`_dmarc.${d} TXT "v=DMARC1; p=reject; rua=mailto:dmarc@${d}.survey.test"`);
    records.push(`_smtp._tls.${d} TXT "v=TLSRPTv1; rua=mailto:tlsrpt@${d}.survey.test"`);
    if (i % 4 === 0) records.push(`_mta-sts.${d} TXT "v=STSv1; id=20260101"`);
  }
  log(`lab: ${N} domains, ${M} MX hosts, ${records.length} records; signing and starting knotd + unbound…`);
  const dns = await startDnssecLab({
    zones: [{ name: 'survey.test', records }],
    authoritativeAddress: '127.0.54.1',
    resolverAddress: '127.0.54.2',
  });
  const cert = labCert(leaf.key, [leaf]);
  const smtp: LabSmtpServer[] = [];
  smtp.push(await startSmtpServer({ host: mxAddress(0), cert }));
  const port = smtp[0]!.port;
  for (let k = 1; k < M; k++) smtp.push(await startSmtpServer({ host: mxAddress(k), port, cert }));
  const list = join(dns.dir, 'domains.txt');
  writeFileSync(list, `${Array.from({ length: N }, (_, i) => domainOf(i)).join('\n')}\n`);
  const sessions = () => smtp.reduce((n, s) => n + s.sessions.length, 0);

  const checkRun = async (label: string, extra: string[]): Promise<RunResult> => {
    const before = sessions();
    const started = process.hrtime.bigint();
    const { stdout, peakKb, cpuTicks } = await runMeasured(process.execPath, [
      ...(args['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', args['cpu-prof']] : []),
      ...(args['max-old-space'] ? [`--max-old-space-size=${args['max-old-space']}`] : []),
      BIN,
      'check',
      '--file',
      list,
      '--resolver',
      `${dns.resolver.host}:${dns.resolver.port}`,
      '--ca-file',
      root.certPath,
      '--smtp-port',
      String(port),
      '--https-port',
      '1',
      '--timeout',
      '5',
      '--allow-private',
      ...extra,
    ]);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const lines = stdout.trim().split('\n');
    const statuses: Record<string, number> = {};
    for (const line of lines) {
      const status = (JSON.parse(line) as { status: string }).status;
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
    if (lines.length !== N) throw new Error(`${label}: ${lines.length} results for ${N} domains`);
    const result = {
      label,
      seconds,
      domainsPerSecond: N / seconds,
      smtpConnections: sessions() - before,
      peakRssMb: peakKb / 1024,
      cpuSeconds: cpuTicks / CLOCK_TICKS,
      statuses,
    };
    log(
      `${label}: ${result.domainsPerSecond.toFixed(0)} domains/s, ${result.smtpConnections} SMTP connections`,
    );
    return result;
  };

  const results: RunResult[] = [];
  try {
    for (const c of args.concurrency.split(','))
      results.push(await checkRun(`cached, --concurrency ${c}`, ['--concurrency', c]));
    const c = args['no-cache-concurrency'];
    if (c !== '0')
      results.push(await checkRun(`--no-cache, --concurrency ${c}`, ['--no-cache', '--concurrency', c]));
    const shell = await shellLoop(
      Math.min(N, Number(args['shell-sample'])),
      dns.resolver.host,
      port,
      sessions,
    );
    printReport(results, shell);
  } finally {
    await Promise.all(smtp.map((s) => s.stop()));
    await dns.stop();
    pki.remove();
  }
}

/** USER_HZ: /proc/PID/stat counts CPU time in 1/100 s on Linux. */
const CLOCK_TICKS = 100;

/**
 * Runs a command to its end, sampling its peak RSS (VmHWM, a high-water mark) and its CPU time (utime + stime
 * from /proc/PID/stat) every 100 ms and on each output chunk; the last samples come just before it exits.
 */
function runMeasured(
  command: string,
  argv: string[],
): Promise<{ stdout: string; peakKb: number; cpuTicks: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    let peakKb = 0;
    let cpuTicks = 0;
    const sample = () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
        const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        // Fields 14 and 15 of proc(5) (utime, stime), counted from the state field (3).
        cpuTicks = Math.max(cpuTicks, Number(fields[11]) + Number(fields[12]));
      } catch {
        // exited
      }
    };
    const timer = setInterval(sample, 100);
    child.stdout.on('data', (d: Buffer) => {
      chunks.push(d);
      sample();
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(timer);
      if (code !== 0 && code !== 1) reject(new Error(`exit ${code}: ${stderr.slice(0, 2000)}`));
      else resolve({ stdout: Buffer.concat(chunks).toString('utf8'), peakKb, cpuTicks });
    });
  });
}

/** The admin's script: dig the records, posttls-finger every MX address of every domain, one domain after another. */
async function shellLoop(
  sample: number,
  resolver: string,
  port: number,
  sessions: () => number,
): Promise<{ domains: number; seconds: number; smtpConnections: number }> {
  const script = `
set -u
for d in ${Array.from({ length: sample }, (_, i) => domainOf(i)).join(' ')}; do
  for q in "TXT $d" "TXT _dmarc.$d" "TXT _smtp._tls.$d" "TXT _mta-sts.$d"; do dig +dnssec +short @${resolver} $q >/dev/null; done
  for mx in $(dig +short @${resolver} MX "$d" | awk '{print $2}'); do
    dig +dnssec +short @${resolver} TLSA "_25._tcp.$mx" >/dev/null
    for ip in $(dig +short @${resolver} A "$mx"); do
      posttls-finger -c -l may "[$ip]:${port}" >/dev/null 2>&1 || true
    done
  done
done`;
  const before = sessions();
  const started = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', () => resolve());
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  log(`shell loop: ${(sample / seconds).toFixed(1)} domains/s`);
  return { domains: sample, seconds, smtpConnections: sessions() - before };
}

function printReport(
  results: RunResult[],
  shell: { domains: number; seconds: number; smtpConnections: number },
) {
  const out = [
    `${N} domains, ${M} MX hosts (${Math.ceil(M / 3)} with DANE), ${new Date().toISOString().slice(0, 10)}, node ${process.version}`,
    '',
    '| run | domains/s | seconds | check CPU s | SMTP connections | peak RSS (MB) | statuses |',
    '|---|---:|---:|---:|---:|---:|---|',
    ...results.map(
      (r) =>
        `| ${r.label} | ${r.domainsPerSecond.toFixed(0)} | ${r.seconds.toFixed(1)} | ${r.cpuSeconds.toFixed(1)} | ` +
        `${r.smtpConnections} | ` +
        `${r.peakRssMb.toFixed(0)} | ${Object.entries(r.statuses)
          .map(([s, n]) => `${s} ${n}`)
          .join(', ')} |`,
    ),
    `| shell loop (dig + posttls-finger), first ${shell.domains} | ${(shell.domains / shell.seconds).toFixed(1)} | ` +
      `${shell.seconds.toFixed(1)} | – | ${shell.smtpConnections} | – | – |`,
  ];
  const best = Math.max(
    ...results.filter((r) => r.label.startsWith('cached')).map((r) => r.domainsPerSecond),
  );
  out.push('', `best cached run / shell loop: ${(best / (shell.domains / shell.seconds)).toFixed(0)}×`);
  process.stdout.write(`${out.join('\n')}\n`);
}

await main();
