// Benchmark: how long `serve`'s monitor takes to check every watched domain once (issue 12 "Bounded
// work": 1,000 watched domains checked within one interval with the default concurrency).
//
//   node --import tsx bench/monitor-round.ts [--domains 1000] [--concurrency 4]
//
// The lab on loopback: a DNS server with one signed zone per domain (MX, the MX host's address, a TLSA
// record matching the MX certificate, _mta-sts and the policy host), one SMTP server with STARTTLS and one
// HTTPS policy host serving every domain's policy, a test PKI whose certificate names every host. The real
// SQLite store holds the domains (watch-only); the monitor (src/monitor/service.ts) runs its start round
// with the real clock: every domain's whole audit (DNS, an SMTP probe, the policy fetch), the comparison
// with the open alerts and one fsynced recordCheck each. Measured: the round's wall time, the checks per
// second, and the process's CPU time. Writes only to temporary directories, removed at the end.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { generateTlsa } from '../src/dane/tlsa.js';
import { DnsClient } from '../src/dns/client.js';
import { createMonitor } from '../src/monitor/service.js';
import { DEFAULT_MONITOR_SETTINGS } from '../src/monitor/settings.js';
import type { CheckRun } from '../src/store/monitor-types.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { standardChain, TestPki } from '../test/helpers/pki.js';
import { type LabZone, startDnsServer } from '../test/lab/dns-server.js';
import { labCert, type SiteBehaviour, startPolicyHost } from '../test/lab/https-server.js';
import { startSmtpServer } from '../test/lab/smtp-server.js';

const { values } = parseArgs({
  options: {
    domains: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: String(DEFAULT_MONITOR_SETTINGS.concurrency) },
  },
});
const count = Number(values.domains);
const concurrency = Number(values.concurrency);
const say = (line: string) => process.stderr.write(`${line}\n`);

const names = Array.from({ length: count }, (_, i) => `d${String(i).padStart(5, '0')}.bench.test`);
const pki = TestPki.create('mxguard-bench-monitor-');
const dataDir = mkdtempSync(join(tmpdir(), 'mxguard-bench-monitor-'));
try {
  say(`issuing a certificate for ${count * 2} names...`);
  const chain = standardChain(pki, {
    host: `mx.${names[0]}`,
    sans: names.flatMap((d) => [`mx.${d}`, `mta-sts.${d}`]),
  });
  const cert = labCert(chain.leaf.key, [chain.leaf, chain.intermediate]);
  const tlsa = generateTlsa(chain.leaf.x509, 3, 1, 1);
  const smtp = await startSmtpServer({ cert });
  const sites: Record<string, SiteBehaviour> = {};
  for (const d of names) {
    sites[`mta-sts.${d}`] = {
      kind: 'serve',
      body: `version: STSv1\nmode: enforce\nmx: mx.${d}\nmax_age: 604800\n`,
    };
  }
  const https = await startPolicyHost({ sites, defaultCert: cert });
  const zones: LabZone[] = [
    {
      origin: '.',
      secure: true,
      records: [{ name: '.', type: 'DNSKEY', data: { flags: 257, algorithm: 13, key: Buffer.alloc(64, 7) } }],
    },
    ...names.map(
      (d): LabZone => ({
        origin: d,
        secure: true,
        records: [
          { name: d, type: 'MX', data: { preference: 10, exchange: `mx.${d}` } },
          { name: `mx.${d}`, type: 'A', data: '127.0.0.1' },
          {
            name: `_25._tcp.mx.${d}`,
            type: 'TLSA',
            data: { usage: 3, selector: 1, matchingType: 1, certificate: tlsa.data },
          },
          { name: `_mta-sts.${d}`, type: 'TXT', data: 'v=STSv1; id=20261201000000' },
          { name: `mta-sts.${d}`, type: 'A', data: '127.0.0.1' },
          { name: `_smtp._tls.${d}`, type: 'TXT', data: `v=TLSRPTv1; rua=mailto:tlsrpt@${d}` },
        ],
      }),
    ),
  ];
  const dns = await startDnsServer(zones);
  const store = await openSqliteStore(dataDir);
  for (const d of names) {
    await store.addDomain(
      d,
      { mode: 'enforce', mx: [`mx.${d}`], maxAge: 604800, rua: [`mailto:tlsrpt@${d}`], watchOnly: true },
      new Date(),
    );
  }

  const runs: CheckRun[] = [];
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const monitor = createMonitor({
    store,
    settings: { ...DEFAULT_MONITOR_SETTINGS, concurrency },
    network: {
      resolver: new DnsClient({ servers: [{ host: dns.host, port: dns.port }], timeoutMs: 3000, tries: 2 }),
      ca: [chain.root.pem],
      allowPrivate: true,
      timeoutMs: 30_000,
      smtpPort: smtp.port,
      httpsPort: https.port,
    },
    now: () => new Date(),
    logger: { info() {}, warn() {}, error() {} },
  });
  say(`checking ${count} domains, ${concurrency} at once...`);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  monitor.startSchedule({
    recorded: (run) => {
      runs.push(run);
      if (runs.length % 100 === 0) say(`  ${runs.length} checked`);
      if (runs.length === count) done();
    },
  });
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await monitor.stop();

  const statuses = new Map<string, number>();
  for (const r of runs) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
  const fails = new Map<string, number>();
  for (const r of runs)
    for (const f of r.findings) if (f.status === 'fail') fails.set(f.code, (fails.get(f.code) ?? 0) + 1);
  const interval = DEFAULT_MONITOR_SETTINGS.intervalSeconds;
  console.log('| what | value |');
  console.log('|---|---|');
  console.log(`| watched domains | ${count} |`);
  console.log(`| concurrency | ${concurrency} |`);
  console.log(`| **one round (every domain checked once)** | **${seconds.toFixed(1)} s** |`);
  console.log(`| checks per second | ${(count / seconds).toFixed(1)} |`);
  console.log(
    `| mean wall time per check (÷ concurrency) | ${((seconds * 1000 * concurrency) / count).toFixed(0)} ms |`,
  );
  console.log(`| process CPU (user + system) | ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s |`);
  console.log(
    `| share of the default interval (${interval} s) | ${((100 * seconds) / interval).toFixed(1)} % |`,
  );
  console.log(`| runs by status | ${[...statuses].map(([s, n]) => `${s} ${n}`).join(', ')} |`);
  console.log(`| failing findings | ${[...fails].map(([c, n]) => `${c} ${n}`).join(', ') || 'none'} |`);
  await store.close();
  await Promise.all([dns.stop(), https.stop(), smtp.stop()]);
} finally {
  pki.remove();
  rmSync(dataDir, { recursive: true, force: true });
}
