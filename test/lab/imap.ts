// Lab IMAP server for integration tests: Debian's Dovecot (packages dovecot-core, dovecot-imapd) run in the
// foreground with a configuration written to a temporary directory: one loopback listener, plain text
// (ssl = no), one passwd-file user, Maildir storage under the directory, owned by "nobody". Loopback only
// (LAB-NOTES: tests never talk to anything but 127.0.0.0/8 and ::1); started and stopped by PID.
//
//   const imap = await startImapServer({ user: 'reports', password: 'secret' });
//   await withImapClient(imap, (client) => client.append('INBOX', message));
//   await imap.stop();
//
// Messages are best delivered with IMAP APPEND (files written as root would not belong to the mail user).
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { freePort } from '../helpers/ports.js';

export interface LabImapServer {
  host: string;
  port: number;
  user: string;
  password: string;
  /** The temporary directory (configuration, logs, mail). */
  dir: string;
  pid: number;
  stop(): Promise<void>;
}

export interface LabImapOptions {
  /** A loopback address (default 127.0.0.1). */
  host?: string;
  user?: string;
  password?: string;
}

const DOVECOT = '/usr/sbin/dovecot';
const MAIL_UID = 65534; // nobody
const MAIL_GID = 65534; // nogroup

export async function startImapServer(options: LabImapOptions = {}): Promise<LabImapServer> {
  const host = options.host ?? '127.0.0.1';
  if (!/^127\.\d+\.\d+\.\d+$/.test(host))
    throw new Error(`lab IMAP server: ${host} is not a loopback address`);
  const user = options.user ?? 'reports';
  const password = options.password ?? 'lab-password';
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-imap-'));
  // Dovecot's unprivileged processes (dovecot, dovenull, nobody) must be able to reach their files.
  chmodSync(dir, 0o755);
  const home = join(dir, 'home', user);
  mkdirSync(home, { recursive: true });
  chownSync(home, MAIL_UID, MAIL_GID);
  writeFileSync(join(dir, 'passwd'), `${user}:{PLAIN}${password}::::::\n`, { mode: 0o644 });

  let lastError = '';
  for (let attempt = 0; attempt < 10; attempt++) {
    const port = await freePort(host);
    const conf = join(dir, 'dovecot.conf');
    writeFileSync(conf, config(dir, host, port));
    const child = spawn(DOVECOT, ['-F', '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk) => {
      stderr += chunk;
    });
    const up = await waitForGreeting(host, port, child);
    if (up) {
      return {
        host,
        port,
        user,
        password,
        dir,
        pid: child.pid!,
        stop: async () => {
          await stopChild(child);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await stopChild(child);
    lastError = `${stderr}${readLog(dir)}`;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`lab IMAP server: dovecot did not start: ${lastError}`);
}

/** Runs `work` with an IMAP client logged in to the lab server as its user, then logs out. */
export async function withImapClient<T>(
  server: LabImapServer,
  work: (client: ImapFlow) => Promise<T>,
): Promise<T> {
  const client = new ImapFlow({
    host: server.host,
    port: server.port,
    secure: false,
    auth: { user: server.user, pass: server.password },
    logger: false,
  });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.logout();
  }
}

function config(dir: string, host: string, port: number): string {
  return `
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
protocols = imap
listen = ${host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_uid = ${MAIL_UID}
mail_gid = ${MAIL_GID}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/passwd
}
userdb {
  driver = static
  args = home=${dir}/home/%u
}
service imap-login {
  inet_listener imap {
    address = ${host}
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
}
`;
}

function readLog(dir: string): string {
  try {
    return readFileSync(join(dir, 'dovecot.log'), 'utf8');
  } catch {
    return '';
  }
}

/** True once the server greets with "* OK"; false when the process exits or 10 s pass. */
async function waitForGreeting(host: string, port: number, child: ChildProcess): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) return false;
    const greeting = await new Promise<string>((resolve) => {
      const socket = net.connect(port, host);
      let data = '';
      socket.setTimeout(1000, () => socket.destroy());
      socket.on('data', (chunk) => {
        data += chunk;
        if (data.includes('\r\n')) socket.destroy();
      });
      socket.on('error', () => {});
      socket.on('close', () => resolve(data));
    });
    if (greeting.startsWith('* OK')) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
