// postfix-mta-sts-resolver (Debian package `postfix-mta-sts-resolver`, the Python socketmap daemon that
// `mxguard policyd` replaces) as a peer for interop tests and benchmarks.
//
//   const peer = await startPeerResolver({ resolvConfPath, caFile });
//   await socketmapQuery(peer.endpoint, 'postfix', 'example.test');
//   await peer.stop();
//
// The daemon has no resolver or CA option: it reads /etc/resolv.conf (c-ares for the TXT lookup, glibc for
// the HTTPS host) and OpenSSL's default trust store. LAB-NOTES: /etc/resolv.conf is never edited, so the
// daemon runs in a private mount namespace where the lab's resolv.conf is bind-mounted over it
// (`unshare -m`, private propagation: nothing leaks to the host), with SSL_CERT_FILE naming the lab CA.
// A resolv.conf has no port: the lab DNS server must listen on port 53, and the policy hosts on 443.
// `unshare`, `sh` and `taskset` all exec, so the PID we hold is the Python daemon's own (for /proc/PID/stat
// and for stopping it). It runs with the Debian python3 and uvloop when `python3-uvloop` is installed
// (the daemon enables uvloop by itself unless given --disable-uvloop); `uvloop` says whether it did.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Endpoint } from '../helpers/netstring-client.js';
import { Daemon, requireCommand, requireRoot } from './dnssec.js';
import { freePort } from './redis.js';

export interface PeerResolverOptions {
  /** A resolv.conf naming the lab DNS server (port 53), bind-mounted over /etc/resolv.conf for the daemon. */
  resolvConfPath: string;
  /** PEM file of the lab CA (the daemon's only trust anchor for the policy fetch). */
  caFile: string;
  /** Listen address (default 127.0.0.1) and port (default: a free one). */
  host?: string;
  port?: number;
  /** Seconds a cached policy is used before the TXT id is checked again (the daemon's default is 60). */
  cacheGrace?: number;
  /** Enforce `testing` policies (the daemon's default: false). */
  strictTesting?: boolean;
  /** Pin the daemon to this CPU (`taskset -c`), for benchmarks. */
  cpu?: number;
  /** Listen on this UNIX socket instead of TCP (the daemon's `path` setting). */
  socketPath?: string;
  /**
   * The policy cache (default "internal": in memory, lost on restart). "sqlite" is the configuration Debian
   * ships in /etc/mta-sts-daemon.yml (a file kept across restarts, read through aiosqlite's threads); here
   * the file is in the daemon's temporary directory.
   */
  cache?: 'internal' | 'sqlite';
  /** Log level (default "warn"; the daemon logs each lookup only at "debug", its start-up at "info"). */
  verbosity?: 'debug' | 'info' | 'warn' | 'error';
}

export interface LabPeerResolver {
  /** Where it listens: host and port, or the UNIX socket. */
  endpoint: Endpoint;
  /** The daemon's PID (the Python process itself). */
  pid: number;
  /** True when the daemon said it runs on uvloop. */
  uvloop: boolean;
  log(): string;
  stop(): Promise<void>;
}

/** A resolv.conf for the mount namespace: only the lab server (which must listen on port 53). */
export function writeLabResolvConf(dir: string, nameserver: string): string {
  const path = join(dir, 'resolv.conf');
  writeFileSync(path, `nameserver ${nameserver}\noptions attempts:1 timeout:2\n`);
  return path;
}

export async function startPeerResolver(options: PeerResolverOptions): Promise<LabPeerResolver> {
  requireRoot('postfix-mta-sts-resolver in a private mount namespace');
  const daemonPath = requireCommand('mta-sts-daemon', 'postfix-mta-sts-resolver');
  const unshare = requireCommand('unshare', 'util-linux');
  const host = options.host ?? '127.0.0.1';
  if (!/^127\.\d+\.\d+\.\d+$/.test(host)) throw new Error(`peer resolver: ${host} is not a 127.x address`);
  const port = options.socketPath === undefined ? (options.port ?? (await freePort(host))) : 0;
  const endpoint: Endpoint = options.socketPath === undefined ? { host, port } : { path: options.socketPath };
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-peer-'));
  const config = join(dir, 'mta-sts-daemon.yml');
  writeFileSync(
    config,
    [
      ...(options.socketPath === undefined
        ? [`host: ${host}`, `port: ${port}`, 'reuse_port: true']
        : [`path: ${JSON.stringify(options.socketPath)}`, 'mode: 0666']),
      'shutdown_timeout: 1',
      `cache_grace: ${options.cacheGrace ?? 60}`,
      'cache:',
      ...(options.cache === 'sqlite'
        ? ['  type: sqlite', '  options:', `    filename: ${JSON.stringify(join(dir, 'cache.db'))}`]
        : ['  type: internal', '  options:', '    cache_size: 10000']),
      'default_zone:',
      `  strict_testing: ${options.strictTesting ? 'true' : 'false'}`,
      '  timeout: 4',
      'proactive_policy_fetching:',
      '  enabled: false',
      '',
    ].join('\n'),
  );
  // Positional parameters, so no path is ever parsed by the shell.
  const script =
    'mount --bind "$1" /etc/resolv.conf && ' +
    'unset https_proxy HTTPS_PROXY http_proxy HTTP_PROXY && ' +
    'SSL_CERT_FILE="$2" exec "$3" -c "$4" -v "$5"';
  const inner = [
    unshare,
    '-m',
    '--propagation',
    'private',
    'sh',
    '-c',
    script,
    'sh',
    options.resolvConfPath,
    options.caFile,
    daemonPath,
    config,
    options.verbosity ?? 'warn',
  ];
  const command =
    options.cpu === undefined
      ? inner
      : [requireCommand('taskset', 'util-linux'), '-c', String(options.cpu), ...inner];
  const daemon = new Daemon('mta-sts-daemon', command[0]!, command.slice(1));
  try {
    // At "warn" the daemon prints nothing when it is up: wait until it accepts connections.
    await daemon.waitFor(() => canConnect(endpoint));
  } catch (err) {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    endpoint,
    pid: daemon.process.pid ?? 0,
    uvloop: uvloopIn(daemon.process.pid ?? 0),
    log: () => daemon.log,
    stop: async () => {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether the process has uvloop's extension module mapped (its own log line is at info level). */
function uvloopIn(pid: number): boolean {
  try {
    return /uvloop\/loop\.[^/]*\.so/.test(readFileSync(`/proc/${pid}/maps`, 'utf8'));
  } catch {
    return false;
  }
}

function canConnect(endpoint: Endpoint): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(endpoint);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
