// Real DNSSEC lab for interop tests: knotd (Debian package `knot`) is the authoritative server of a lab root
// ".", of "test." and of the scenario zones, signing them itself (ECDSA P-256, RFC 6605); unbound (package
// `unbound`) is a validating recursive resolver whose only root is that lab root (RFC 4035 validation, RFC 8914
// Extended DNS Errors on). Everything listens on 127.0.53.x port 53 (port 53 because posttls-finger and
// ldns-dane cannot be given a port), so the lab needs root and must not share its addresses with other tests.
//
//   const lab = await startDnssecLab({ zones: [
//     { name: 's1.test', records: ['@ MX 10 mx', 'mx A 127.0.53.25', '_25._tcp.mx TLSA 3 1 1 ab12...'] },
//     { name: 'plain.test', security: 'insecure', records: [...] },   // unsigned, no DS in test.
//     { name: 'broken.test', security: 'bogus', records: [...] },     // signed, DS digest in test. corrupted
//   ] });
//   new DnsClient({ servers: [lab.resolver] });  ...;  await lab.stop();
//
// LAB-NOTES safety rules, all enforced here: unbound never sees the real root (root-hints name only the lab
// server, the trust anchor is the lab root's DS, `do-not-query-localhost: no`, `local-zone: "test." nodefault`,
// outgoing-interface on 127.x); no systemd: both daemons run in the foreground as our children and are stopped by
// PID; /etc/resolv.conf is never touched (tools that read it get `resolvConfPath` bind-mounted, see oracles.ts).
//
// How the chain of trust is built without reloads: keymgr creates one CSK per signed zone in the KASP database
// before knotd starts, `keymgr ZONE ds` gives the DS that goes into the parent's zone file, and the policy is
// `manual: on`, so knotd signs with exactly those keys when it loads the zones. The root's DS is the trust anchor.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export type ZoneSecurity = 'secure' | 'insecure' | 'bogus';

export interface DnssecZone {
  /** The zone apex, e.g. "s1.test" (a trailing dot is optional). Its parent is the closest enclosing lab zone. */
  name: string;
  /**
   * secure (default): signed, DS in the parent; insecure: unsigned, no DS (the parent proves the DS absent);
   * bogus: signed, but the parent's DS carries a corrupted digest, so validation fails (RFC 4035 §5.2).
   */
  security?: ZoneSecurity;
  /**
   * Zone file lines (RFC 1035 §5) after `$ORIGIN <zone>.` and `$TTL 300`, so relative owners work:
   * "@ MX 10 mx", "mx A 127.0.53.25", "_25._tcp.mx TLSA 3 1 1 <hex>". SOA and NS are added.
   */
  records: string[];
}

export interface DnssecLabOptions {
  zones: DnssecZone[];
  /** knotd's address (port 53). Default 127.0.53.1. */
  authoritativeAddress?: string;
  /** unbound's address (port 53). Default 127.0.53.2. */
  resolverAddress?: string;
  /**
   * TSIG keys knotd accepts DNS UPDATE (RFC 2136) with, each for the zones named (knot.conf `key:` + an
   * `acl: action: [update, transfer]` on those zones: AXFR with the key too). `secret` is base64. None by default.
   */
  updateKeys?: Array<{ name: string; algorithm: string; secret: string; zones: string[] }>;
}

export interface DnssecLab {
  /** The validating resolver, for `--resolver`, DnsClient, `delv @`, `ldns-dane -r`. */
  resolver: { host: string; port: number };
  authoritative: { host: string; port: number };
  /** The lab root's DS record, e.g. ". DS 11555 13 2 54fa...": unbound's trust anchor. */
  trustAnchor: string;
  /** A resolv.conf naming only the lab resolver (with `options trust-ad`), to bind-mount over /etc/resolv.conf. */
  resolvConfPath: string;
  /** The lab's temporary directory (configs, zone files, keys, logs); removed by stop(). */
  dir: string;
  /** Output of the daemons so far, for failure messages. */
  logs(): string;
  stop(): Promise<void>;
}

const PORT = 53;
const TTL = 300;
const NS_NAME = 'ns.test.';
/** keymgr prints DS records for digest types 2 and 4; keep algorithm 13 with type 2 (SHA-256, RFC 8624 §3.3). */
const DS_DIGEST_SHA256 = ' 13 2 ';

// ---------------------------------------------------------------------------------------------------------
// Commands and daemons, shared by the other lab modules

/**
 * The absolute path of `command`, searched in PATH and the sbin directories (root's tools live there); throws
 * naming the Debian package when it is missing, so a test fails with a message that says what to install.
 */
export function requireCommand(command: string, debianPackage: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/lib/postfix/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const path = join(dir, command);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  throw new Error(
    `"${command}" is not installed: install the Debian package "${debianPackage}" ` +
      `(apt-get install --no-install-recommends ${debianPackage}; .ci/run does)`,
  );
}

/** Fail early, with one clear message, when the lab cannot bind port 53 / start daemons as their owner. */
export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) {
    throw new Error(`${what} needs root (it binds port 53/25 on 127.0.53.x and starts daemons); run as root`);
  }
}

/** Run a command to completion; throws with its output when it fails. */
export async function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv } = {}) {
  try {
    return await execFileAsync(command, args, { env: options.env, timeout: 30_000, maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`);
  }
}

/** A foreground daemon we started: its PID, its output, and a stop that signals exactly that PID. */
export class Daemon {
  readonly name: string;
  readonly process: ChildProcess;
  private output = '';
  private exited: Promise<void>;
  private hasExited = false;

  constructor(name: string, command: string, args: string[]) {
    this.name = name;
    this.process = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (chunk: Buffer) => {
      // Keep the tail only: a chatty daemon must not grow memory without bound.
      this.output = (this.output + chunk.toString()).slice(-64 * 1024);
    };
    this.process.stdout?.on('data', collect);
    this.process.stderr?.on('data', collect);
    this.exited = new Promise((resolve) => {
      this.process.once('exit', () => {
        this.hasExited = true;
        resolve();
      });
      this.process.once('error', (err) => {
        this.output += `\n${name}: ${err.message}`;
        this.hasExited = true;
        resolve();
      });
    });
  }

  get log(): string {
    return this.output;
  }

  /** Wait until the output matches `ready` (or `isReady()` resolves true); fail if the daemon exits first. */
  async waitFor(ready: RegExp | (() => Promise<boolean>), timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (typeof ready === 'function' ? await ready() : ready.test(this.output)) return;
      if (this.hasExited) {
        throw new Error(
          `${this.name} exited during start-up (code ${this.process.exitCode}):\n${this.output}`,
        );
      }
      if (Date.now() > deadline) {
        throw new Error(`${this.name} was not ready after ${timeoutMs} ms:\n${this.output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** SIGTERM to our PID, SIGKILL after 5 s; resolves once it has exited. */
  async stop(): Promise<void> {
    if (this.hasExited || this.process.pid === undefined) return;
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 5_000);
    await this.exited;
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------------------
// The lab

interface Zone {
  apex: string; // with trailing dot; "." for the root
  security: ZoneSecurity;
  records: string[];
  parent?: Zone;
}

export async function startDnssecLab(options: DnssecLabOptions): Promise<DnssecLab> {
  requireRoot('the DNSSEC lab');
  const knotd = requireCommand('knotd', 'knot');
  const keymgr = requireCommand('keymgr', 'knot');
  const unbound = requireCommand('unbound', 'unbound');
  const authHost = options.authoritativeAddress ?? '127.0.53.1';
  const resolverHost = options.resolverAddress ?? '127.0.53.2';
  for (const host of [authHost, resolverHost]) {
    if (!/^127\.\d+\.\d+\.\d+$/.test(host)) throw new Error(`DNSSEC lab: ${host} is not a 127.x address`);
  }
  const zones = zoneTree(options.zones);

  const dir = mkdtempSync(join(tmpdir(), 'mxguard-dnssec-'));
  chmodSync(dir, 0o755);
  const daemons: Daemon[] = [];
  const stop = async () => {
    for (const d of daemons.reverse()) await d.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const knotConf = join(dir, 'knot.conf');
    writeFileSync(knotConf, knotConfig(dir, authHost, zones, options.updateKeys ?? []));

    // Keys first (offline, into the KASP DB), then every zone file with its children's DS records.
    const signed = zones.filter((z) => z.security !== 'insecure');
    const dsOf = new Map<Zone, string>();
    for (const zone of signed) {
      await run(keymgr, [
        '-c',
        knotConf,
        zone.apex,
        'generate',
        'algorithm=ecdsap256sha256',
        'ksk=yes',
        'zsk=yes',
      ]);
      const { stdout } = await run(keymgr, ['-c', knotConf, zone.apex, 'ds']);
      const ds = stdout.split('\n').find((line) => line.includes(DS_DIGEST_SHA256));
      if (ds === undefined) throw new Error(`keymgr gave no SHA-256 DS for ${zone.apex}:\n${stdout}`);
      dsOf.set(zone, zone.security === 'bogus' ? corruptDigest(ds.trim()) : ds.trim());
    }
    for (const zone of zones) {
      writeFileSync(join(dir, zoneFileName(zone)), zoneFile(zone, zones, dsOf, authHost));
    }
    const root = zones[0]!;
    const trustAnchor = dsOf.get(root)!;

    const knot = new Daemon('knotd', knotd, ['-c', knotConf]);
    daemons.push(knot);
    // knotd logs "[zone.] loaded, serial ..." once a zone is signed and served; it keeps running when an
    // address is taken or a zone file is wrong, so its first "error:" line ends the wait.
    await knot.waitFor(async () => {
      const failure = / error: (.*)/.exec(knot.log);
      if (failure) throw new Error(`knotd: ${failure[1]}\n${knot.log}`);
      return zones.every((z) => knot.log.includes(`[${z.apex}] loaded`));
    });

    writeFileSync(
      join(dir, 'root.hints'),
      `. 3600000 IN NS ${NS_NAME}\n${NS_NAME} 3600000 IN A ${authHost}\n`,
    );
    const unboundConf = join(dir, 'unbound.conf');
    writeFileSync(unboundConf, unboundConfig(dir, resolverHost, trustAnchor));
    const resolver = new Daemon('unbound', unbound, ['-d', '-c', unboundConf]);
    daemons.push(resolver);
    await resolver.waitFor(/start of service/);

    const resolvConfPath = join(dir, 'resolv.conf');
    // glibc >= 2.31 clears AD in answers unless resolv.conf says trust-ad; Postfix's DANE needs it.
    writeFileSync(resolvConfPath, `nameserver ${resolverHost}\noptions trust-ad edns0\n`);

    return {
      resolver: { host: resolverHost, port: PORT },
      authoritative: { host: authHost, port: PORT },
      trustAnchor,
      resolvConfPath,
      dir,
      logs: () => daemons.map((d) => `--- ${d.name}\n${d.log}`).join('\n'),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The lab root, "test." and the given zones, parents before children; each zone knows its closest parent. */
function zoneTree(specs: DnssecZone[]): Zone[] {
  const zones: Zone[] = [
    { apex: '.', security: 'secure', records: [] },
    { apex: 'test.', security: 'secure', records: [] },
  ];
  for (const spec of specs) {
    const apex = `${spec.name.toLowerCase().replace(/\.$/, '')}.`;
    if (zones.some((z) => z.apex === apex)) throw new Error(`DNSSEC lab: zone ${apex} given twice`);
    zones.push({ apex, security: spec.security ?? 'secure', records: spec.records });
  }
  zones.sort((a, b) => labels(a.apex) - labels(b.apex));
  for (const zone of zones.slice(1)) {
    const parents = zones.filter((p) => p !== zone && isBelow(zone.apex, p.apex));
    zone.parent = parents.reduce((best, p) => (labels(p.apex) > labels(best.apex) ? p : best));
    if (zone.parent.security === 'insecure' && zone.security !== 'insecure') {
      throw new Error(`DNSSEC lab: ${zone.apex} cannot be signed below the unsigned ${zone.parent.apex}`);
    }
  }
  return zones;
}

function labels(apex: string): number {
  return apex === '.' ? 0 : apex.split('.').length - 1;
}

function isBelow(name: string, apex: string): boolean {
  return apex === '.' || name.endsWith(`.${apex}`);
}

function zoneFileName(zone: Zone): string {
  return zone.apex === '.' ? 'root.zone' : `${zone.apex}zone`;
}

/** Flip the last hex digit of the digest: a DS that matches no DNSKEY of the child. */
function corruptDigest(ds: string): string {
  const last = ds.at(-1)!;
  return ds.slice(0, -1) + (last === '0' ? '1' : '0');
}

function zoneFile(zone: Zone, zones: Zone[], dsOf: Map<Zone, string>, authHost: string): string {
  const lines = [
    `$ORIGIN ${zone.apex}`,
    `$TTL ${TTL}`,
    `@ IN SOA ${NS_NAME} hostmaster.test. 1 3600 600 86400 ${TTL}`,
    `@ IN NS ${NS_NAME}`,
  ];
  // The name server's address: authoritative in test., glue in the root.
  if (zone.apex === 'test.' || zone.apex === '.') lines.push(`${NS_NAME} IN A ${authHost}`);
  for (const child of zones.filter((z) => z.parent === zone)) {
    lines.push(`${child.apex} IN NS ${NS_NAME}`);
    const ds = dsOf.get(child);
    // "a.test. DS 1234 13 2 <hex>" from keymgr: owner, then the type and RDATA.
    if (ds !== undefined) lines.push(ds.replace(/^(\S+) DS /, '$1 IN DS '));
  }
  lines.push(...zone.records);
  return `${lines.join('\n')}\n`;
}

function knotConfig(
  dir: string,
  host: string,
  zones: Zone[],
  updateKeys: NonNullable<DnssecLabOptions['updateKeys']>,
): string {
  const apex = (name: string) => `${name.toLowerCase().replace(/\.$/, '')}.`;
  const zoneLines = zones.flatMap((z) => {
    const acls = updateKeys.flatMap((k, i) => (k.zones.map(apex).includes(z.apex) ? [`update${i}`] : []));
    return [
      `  - domain: "${z.apex}"`,
      `    file: "${zoneFileName(z)}"`,
      `    template: ${z.security === 'insecure' ? 'unsigned' : 'signed'}`,
      ...(acls.length > 0 ? [`    acl: [${acls.join(', ')}]`] : []),
    ];
  });
  const keyLines =
    updateKeys.length === 0
      ? []
      : [
          'key:',
          ...updateKeys.flatMap((k) => [
            `  - id: ${k.name}`,
            `    algorithm: ${k.algorithm}`,
            `    secret: ${k.secret}`,
          ]),
          'acl:',
          ...updateKeys.flatMap((k, i) => [
            `  - id: update${i}`,
            `    key: ${k.name}`,
            '    action: [update, transfer]',
          ]),
        ];
  return `${[
    'server:',
    `  rundir: "${dir}"`,
    `  listen: ${host}@${PORT}`,
    `  pidfile: "${dir}/knot.pid"`,
    'log:',
    '  - target: stderr',
    '    any: info',
    'database:',
    `  storage: "${dir}"`,
    `  kasp-db: "${dir}/kasp"`,
    `  journal-db: "${dir}/journal"`,
    `  timer-db: "${dir}/timers"`,
    'control:',
    `  listen: "${dir}/knot.sock"`,
    ...keyLines,
    'policy:',
    '  - id: lab',
    '    algorithm: ecdsap256sha256',
    '    single-type-signing: on',
    // The keys are made by keymgr beforehand; knotd signs with them and never rolls them.
    '    manual: on',
    'template:',
    '  - id: unsigned',
    `    storage: "${dir}"`,
    '    zonefile-sync: -1',
    '    journal-content: none',
    '  - id: signed',
    `    storage: "${dir}"`,
    '    zonefile-sync: -1',
    '    journal-content: none',
    '    dnssec-signing: on',
    '    dnssec-policy: lab',
    'zone:',
    ...zoneLines,
  ].join('\n')}\n`;
}

function unboundConfig(dir: string, host: string, trustAnchor: string): string {
  return `${[
    'server:',
    `  interface: ${host}@${PORT}`,
    // LAB-NOTES: never the real root. Queries leave from 127.x, and only go where root.hints points.
    `  outgoing-interface: ${host}`,
    '  do-ip6: no',
    '  do-not-query-localhost: no',
    '  access-control: 127.0.0.0/8 allow',
    `  root-hints: "${dir}/root.hints"`,
    `  trust-anchor: "${trustAnchor}"`,
    // unbound serves test. as an empty static zone by default (RFC 6761).
    '  local-zone: "test." nodefault',
    '  module-config: "validator iterator"',
    '  ede: yes',
    '  val-log-level: 2',
    '  username: ""',
    '  chroot: ""',
    `  directory: "${dir}"`,
    '  pidfile: ""',
    '  use-syslog: no',
    '  logfile: ""',
    '  verbosity: 1',
    'remote-control:',
    '  control-enable: no',
  ].join('\n')}\n`;
}
