// Benchmark: `mxguard serve` against nginx serving the same MTA-STS policy over HTTPS.
//
//   npm run build && node --import tsx bench/serve.ts [--rounds 5] [--duration 10] [--connections 50]
//
// Both servers get the same certificate and key (EC P-256), TLS 1.2-1.3 (wrk negotiates 1.3 with
// both), keep-alive, two worker processes, Host routing (nginx: a server block for the policy host
// and a default one answering 404) and a log line per fetch (nginx: a buffered access_log; mxguard:
// its fetch log in SQLite, batched). wrk (same machine, same 2 cores) runs against each in turn,
// alternating which goes first, `rounds` times; the report gives each run, the median ratio of
// requests/s and p99 latency, and the CPU steal seen during each run (/proc/stat). Loopback only.
// Needs the Debian packages nginx, wrk and openssl.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../test/helpers/ports.js';
import { spawnServe } from '../test/helpers/serve-process.js';
import { median } from './stats.js';

const HOST = 'mta-sts.bench.test';
const DOMAIN = 'bench.test';

interface WrkResult {
  requests: number;
  requestsPerSecond: number;
  p99Ms: number;
  non2xx: number;
  /** CPU steal during the run, percent of all CPU time. */
  stealPercent: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '50' },
      threads: { type: 'string', default: '2' },
    },
  });
  const rounds = Number(values.rounds);
  const wrkArgs = [
    '-t',
    String(values.threads),
    '-c',
    String(values.connections),
    '-d',
    `${values.duration}s`,
  ];

  const dir = mkdtempSync(join(tmpdir(), 'mxguard-bench-'));
  // nginx workers run as an unprivileged user when started as root: they must be able to read the policy.
  chmodSync(dir, 0o755);
  const children: ChildProcess[] = [];
  try {
    const { certPath, keyPath } = makeCertificate(dir);
    const dataDir = join(dir, 'data');
    const policy = await addDomain(dataDir);
    const certDir = join(dataDir, 'certs', HOST);
    mkdirSync(certDir, { recursive: true });
    writeFileSync(join(certDir, 'fullchain.pem'), readFileSync(certPath));
    writeFileSync(join(certDir, 'privkey.pem'), readFileSync(keyPath));

    const mxPort = await freePort();
    const mxPlainPort = await freePort();
    const mxMetricsPort = await freePort();
    // wrk sends the URL's host (127.0.0.1) as SNI: both servers answer it with the same default certificate.
    writeFileSync(
      join(dir, 'serve.json'),
      JSON.stringify({
        dataDir,
        listen: `127.0.0.1:${mxPlainPort}`,
        tlsListen: `127.0.0.1:${mxPort}`,
        metricsListen: `127.0.0.1:${mxMetricsPort}`,
        workers: 2,
        logLevel: 'warn',
        defaultCertificate: { cert: certPath, key: keyPath },
      }),
    );
    // The built command (npm run build), as users run it.
    const mxguard = spawnServe(['--config', join(dir, 'serve.json')]);
    children.push(mxguard.child);
    await mxguard.waitFor(/listening on https:/, 'the HTTPS listener');

    const nginxPort = await freePort();
    const nginx = startNginx(dir, nginxPort, certPath, keyPath, policy);
    children.push(nginx);
    await waitForPort(nginxPort);

    const targets = {
      nginx: `https://127.0.0.1:${nginxPort}/.well-known/mta-sts.txt`,
      mxguard: `https://127.0.0.1:${mxPort}/.well-known/mta-sts.txt`,
    };
    const checks = { nginx: 0, mxguard: 0 };
    for (const [name, url] of Object.entries(targets)) {
      const check = runWrk(['-t', '1', '-c', '1', '-d', '1s'], url);
      checks[name as keyof typeof checks] = check.requests;
      if (check.non2xx > 0 || check.requestsPerSecond === 0)
        throw new Error(`${name} does not serve the policy: ${JSON.stringify(check)}`);
    }

    const runs: Array<{ round: number; nginx: WrkResult; mxguard: WrkResult }> = [];
    for (let round = 1; round <= rounds; round++) {
      const order: Array<keyof typeof targets> =
        round % 2 === 1 ? ['nginx', 'mxguard'] : ['mxguard', 'nginx'];
      const result: Partial<Record<keyof typeof targets, WrkResult>> = {};
      for (const name of order) result[name] = runWrk(wrkArgs, targets[name]);
      runs.push({ round, nginx: result.nginx!, mxguard: result.mxguard! });
      process.stderr.write(`round ${round}: nginx ${fmt(result.nginx!)} | mxguard ${fmt(result.mxguard!)}\n`);
    }
    // Every request went through Host routing and the fetch log: the counter next to the log entry
    // must equal what wrk counted (the check runs above included).
    const counted = await fetchCounter(mxMetricsPort);
    const sent = checks.mxguard + runs.reduce((sum, r) => sum + r.mxguard.requests, 0);
    const fetchesLogged = await countFetches(dataDir);
    report(runs, `wrk ${wrkArgs.join(' ')} -H 'Host: ${HOST}' --latency URL`, fetchesLogged, counted, sent);
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    rmSync(dir, { recursive: true, force: true });
  }
}

function makeCertificate(dir: string): { certPath: string; keyPath: string } {
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-subj',
      `/CN=${HOST}`,
      '-addext',
      `subjectAltName=DNS:${HOST}`,
      '-days',
      '30',
    ],
    { stdio: 'ignore' },
  );
  return { certPath, keyPath };
}

async function addDomain(dataDir: string): Promise<string> {
  const { openStore } = await import('../src/store/index.js');
  const store = await openStore(dataDir);
  try {
    const domain = await store.addDomain(
      DOMAIN,
      { mode: 'enforce', mx: [`mx.${DOMAIN}`], maxAge: 604800, rua: [`mailto:tlsrpt@${DOMAIN}`] },
      new Date(),
    );
    return domain.policyText;
  } finally {
    await store.close();
  }
}

async function countFetches(dataDir: string): Promise<number> {
  const { openStore } = await import('../src/store/index.js');
  const store = await openStore(dataDir);
  try {
    return (await store.listFetches(DOMAIN, { limit: 10_000 })).items.length;
  } finally {
    await store.close();
  }
}

function startNginx(
  dir: string,
  port: number,
  certPath: string,
  keyPath: string,
  policy: string,
): ChildProcess {
  const root = join(dir, 'www');
  mkdirSync(join(root, '.well-known'), { recursive: true });
  writeFileSync(join(root, '.well-known', 'mta-sts.txt'), policy);
  mkdirSync(join(dir, 'nginx-tmp'), { recursive: true });
  const temp = join(dir, 'nginx-tmp');
  const config = `
worker_processes 2;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'nginx-error.log')};
events { worker_connections 1024; }
http {
  access_log ${join(dir, 'access.log')} combined buffer=64k;
  client_body_temp_path ${temp}; proxy_temp_path ${temp}; fastcgi_temp_path ${temp};
  uwsgi_temp_path ${temp}; scgi_temp_path ${temp};
  keepalive_requests 1000000;
  ssl_certificate ${certPath};
  ssl_certificate_key ${keyPath};
  ssl_protocols TLSv1.2 TLSv1.3;
  server {
    # wrk's SNI is the URL's 127.0.0.1, so this server gets every connection: it routes by Host.
    listen 127.0.0.1:${port} ssl default_server;
    server_name ${HOST};
    if ($host != "${HOST}") { return 404; }
    location = /.well-known/mta-sts.txt { root ${root}; default_type text/plain; charset utf-8; }
    location / { return 404; }
  }
}
`;
  const configPath = join(dir, 'nginx.conf');
  writeFileSync(configPath, config);
  return spawn('nginx', ['-c', configPath, '-p', dir], { stdio: 'ignore' });
}

function runWrk(args: string[], url: string): WrkResult {
  const before = readSteal();
  const out = execFileSync('wrk', [...args, '--latency', '-H', `Host: ${HOST}`, url], { encoding: 'utf8' });
  const after = readSteal();
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const requests = /(\d+) requests in/.exec(out);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const unit = { us: 0.001, ms: 1, s: 1000 }[(p99?.[2] ?? 'ms') as 'us' | 'ms' | 's'];
  return {
    requests: requests ? Number(requests[1]) : 0,
    requestsPerSecond: rps ? Number(rps[1]) : 0,
    p99Ms: p99 ? Number(p99[1]) * unit : Number.NaN,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    stealPercent: ((after.steal - before.steal) / Math.max(1, after.total - before.total)) * 100,
  };
}

/** The "cpu" line of /proc/stat: steal and total jiffies. */
function readSteal(): { steal: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  return { steal: fields[7] ?? 0, total: fields.reduce((a, b) => a + b, 0) };
}

function fmt(r: WrkResult): string {
  return `${Math.round(r.requestsPerSecond)} req/s p99 ${r.p99Ms.toFixed(2)} ms steal ${r.stealPercent.toFixed(1)}%`;
}

function report(
  runs: Array<{ round: number; nginx: WrkResult; mxguard: WrkResult }>,
  command: string,
  fetchesLogged: number,
  counted: number,
  sent: number,
): void {
  const lines = [
    `Command: \`${command}\` (URL = each server's https://127.0.0.1:PORT/.well-known/mta-sts.txt)`,
    '',
    '| round | nginx req/s | nginx p99 | steal | mxguard req/s | mxguard p99 | steal | req/s ratio | p99 ratio |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const { round, nginx, mxguard } of runs) {
    lines.push(
      `| ${round} | ${Math.round(nginx.requestsPerSecond)} | ${nginx.p99Ms.toFixed(2)} ms | ${nginx.stealPercent.toFixed(1)}% | ${Math.round(mxguard.requestsPerSecond)} | ${mxguard.p99Ms.toFixed(2)} ms | ${mxguard.stealPercent.toFixed(1)}% | ${(mxguard.requestsPerSecond / nginx.requestsPerSecond).toFixed(2)} | ${(mxguard.p99Ms / nginx.p99Ms).toFixed(2)} |`,
    );
  }
  const rpsRatio = median(runs.map((r) => r.mxguard.requestsPerSecond / r.nginx.requestsPerSecond));
  const p99Ratio = median(runs.map((r) => r.mxguard.p99Ms / r.nginx.p99Ms));
  const steal = median(runs.flatMap((r) => [r.nginx.stealPercent, r.mxguard.stealPercent]));
  lines.push(
    '',
    `Median over ${runs.length} rounds: mxguard/nginx requests/s ${rpsRatio.toFixed(2)}x, p99 ${p99Ratio.toFixed(2)}x; median CPU steal ${steal.toFixed(1)}%.`,
    `Policy fetches counted by mxguard (mxguard_policy_fetches_total): ${counted}; requests wrk completed: ${sent}${counted >= sent ? '' : ' (MISMATCH)'}. Fetch log rows present (newest 10000 asked for): ${fetchesLogged}.`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** The sum of mxguard_policy_fetches_total over all workers, from /metrics on metricsListen (no login). */
function fetchCounter(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
        let text = '';
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => {
          const values = [...text.matchAll(/^mxguard_policy_fetches_total\{[^}]*\} (\d+)$/gm)].map((m) =>
            Number(m[1]),
          );
          resolve(values.reduce((a, b) => a + b, 0));
        });
      })
      .on('error', reject);
  });
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

await main();
