// A private Postfix instance (Debian package `postfix`) as the receiving MX for interop tests: smtpd with
// STARTTLS (RFC 3207) on chosen 127.x addresses, port 25, each listener with its own key and certificate chain.
// Mail for the given domains is accepted and discarded; nothing is ever relayed.
//
//   const mx = await startPostfix({
//     domains: ['s1.test'],
//     listeners: [{ address: '127.0.53.25', keyPath: leaf.key.path, chainPaths: [leaf.certPath, ca.certPath] }],
//   });
//   ...; await mx.stop();
//
// LAB-NOTES: no systemd and no `postfix start`: the master daemon runs in the foreground (`master -s`) as our
// child and is stopped by its PID (SIGTERM makes it stop its own children). The instance has its own config,
// queue and data directories in a temporary directory, logs to a file there (there is no syslog), and runs
// nothing chrooted. `inet_interfaces = loopback-only`; listeners must be 127.x addresses.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, requireCommand, requireRoot, run } from './dnssec.js';

export interface PostfixListener {
  /** A 127.x address; smtpd listens on port 25 there. */
  address: string;
  /** PEM private key file. */
  keyPath: string;
  /** PEM certificate files sent in the handshake, in order: the leaf first, then any CA certificates. */
  chainPaths: string[];
}

export interface PostfixOptions {
  listeners: PostfixListener[];
  /** Domains whose mail is accepted (and discarded). */
  domains: string[];
  /** The name in the greeting and EHLO reply (default "mx.lab.test"). */
  hostname?: string;
}

export interface LabPostfix {
  listeners: { address: string; port: number }[];
  /** The instance's config directory (main.cf, master.cf). */
  configDir: string;
  dir: string;
  /** The maillog so far, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

const SMTP_PORT = 25;
const MASTER_DIR = '/usr/lib/postfix/sbin';

export async function startPostfix(options: PostfixOptions): Promise<LabPostfix> {
  requireRoot('the Postfix lab');
  const postfix = requireCommand('postfix', 'postfix');
  const master = requireCommand('master', 'postfix');
  requireCommand('smtpd', 'postfix');
  for (const l of options.listeners) {
    if (!/^127\.\d+\.\d+\.\d+$/.test(l.address))
      throw new Error(`Postfix lab: ${l.address} is not a 127.x address`);
  }

  const dir = mkdtempSync(join(tmpdir(), 'mxguard-postfix-'));
  const configDir = join(dir, 'etc');
  const queueDir = join(dir, 'spool');
  const dataDir = join(dir, 'data');
  const maillog = join(dir, 'maillog');
  let daemon: Daemon | undefined;
  const stop = async () => {
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // smtpd runs as the postfix user: it must be able to walk into the queue directory.
    for (const d of [configDir, queueDir, dataDir]) mkdirSync(d, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    const postfixUser = await run('id', ['-u', 'postfix']);
    chownSync(dataDir, Number(postfixUser.stdout.trim()), 0);

    // One file per listener: the key, then the chain (smtpd_tls_chain_files reads them in this order).
    const services = options.listeners.map((l, i) => {
      const chainFile = join(configDir, `listener-${i}.pem`);
      const pem = [l.keyPath, ...l.chainPaths].map((p) => readFileSync(p, 'utf8')).join('');
      writeFileSync(chainFile, pem, { mode: 0o600 });
      return `${l.address}:${SMTP_PORT} inet n - n - - smtpd -o smtpd_tls_chain_files=${chainFile}`;
    });
    writeFileSync(join(configDir, 'main.cf'), mainCf(options, queueDir, dataDir, maillog));
    writeFileSync(join(configDir, 'master.cf'), `${[...services, ...INTERNAL_SERVICES].join('\n')}\n`);
    writeFileSync(maillog, '');

    // `postfix check` creates the queue directories with their owners and modes.
    await run(postfix, ['-c', configDir, 'check']);
    daemon = new Daemon('postfix master', master, ['-c', configDir, '-s']);
    const started = daemon;
    await started.waitFor(() =>
      Promise.all(options.listeners.map((l) => greets(l.address))).then((all) => all.every(Boolean)),
    );
    return {
      listeners: options.listeners.map((l) => ({ address: l.address, port: SMTP_PORT })),
      configDir,
      dir,
      log: () => `${started.log}\n${readFileSync(maillog, 'utf8')}`,
      stop,
    };
  } catch (err) {
    const log = (() => {
      try {
        return readFileSync(maillog, 'utf8');
      } catch {
        return '';
      }
    })();
    await stop();
    throw new Error(`${(err as Error).message}\n--- maillog\n${log}`);
  }
}

function mainCf(options: PostfixOptions, queueDir: string, dataDir: string, maillog: string): string {
  const domains = options.domains.map((d) => d.replace(/\.$/, ''));
  const transport = domains.map((d) => `${d}=discard:`).join(' ');
  return `${[
    'compatibility_level = 3.6',
    `queue_directory = ${queueDir}`,
    `data_directory = ${dataDir}`,
    `daemon_directory = ${MASTER_DIR}`,
    'shlib_directory = /usr/lib/postfix',
    // No syslog here: postlogd writes this file (LAB-NOTES).
    `maillog_file = ${maillog}`,
    `maillog_file_prefixes = ${maillog}`,
    `myhostname = ${options.hostname ?? 'mx.lab.test'}`,
    'mydestination =',
    'inet_interfaces = loopback-only',
    'inet_protocols = ipv4',
    'mynetworks = 127.0.0.0/8',
    `relay_domains = ${domains.join(' ')}`,
    `transport_maps = inline:{ ${transport} }`,
    'alias_maps =',
    'alias_database =',
    'local_recipient_maps =',
    'smtpd_tls_security_level = may',
    'smtpd_tls_loglevel = 1',
    // The lab never sends mail; if something queued a message, it must not leave.
    'default_transport = discard',
    'relay_transport = discard',
  ].join('\n')}\n`;
}

/** The internal services smtpd talks to, none chrooted (master.cf(5) columns). */
export const INTERNAL_SERVICES = [
  'pickup    unix  n - n 60 1 pickup',
  'cleanup   unix  n - n - 0 cleanup',
  'qmgr      unix  n - n 300 1 qmgr',
  'tlsmgr    unix  - - n 1000? 1 tlsmgr',
  'rewrite   unix  - - n - - trivial-rewrite',
  'bounce    unix  - - n - 0 bounce',
  'defer     unix  - - n - 0 bounce',
  'trace     unix  - - n - 0 bounce',
  'verify    unix  - - n - 1 verify',
  'flush     unix  n - n 1000? 0 flush',
  'proxymap  unix  - - n - - proxymap',
  'showq     unix  n - n - - showq',
  'error     unix  - - n - - error',
  'retry     unix  - - n - - error',
  'discard   unix  - - n - - discard',
  'anvil     unix  - - n - 1 anvil',
  'scache    unix  - - n - 1 scache',
  'postlog   unix-dgram n - n - 1 postlogd',
];

/** Whether an SMTP server at address:25 sends a 220 greeting (then we close without a word). */
function greets(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port: SMTP_PORT });
    let text = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2_000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('data', (chunk) => {
      text += chunk.toString();
      if (text.includes('\n')) done(text.startsWith('220'));
    });
  });
}
