// The smart host of `mxguard policyd postfix-config` run by real Postfix (Debian package `postfix`): the
// generated main.cf/master.cf pass `postfix check` and `postconf` without a warning, and a Postfix started with
// them relays mail from the "Exchange server" (a loopback client) to lab MX hosts with DANE verified (RFC 7672)
// and MTA-STS enforced through `mxguard policyd` (RFC 8461), refuses every other client, refuses plain text, and
// defers rather than deliver to an MX whose certificate matches neither its TLSA records nor its policy.
//
// The lab (LAB-NOTES: loopback only, daemons stopped by PID; needs root for port 53/25 on 127.0.147.x, which no
// other test file uses): knotd 127.0.147.1 and validating unbound 127.0.147.2 (test/lab/dnssec.ts), the policy
// host 127.0.147.3 (port 443), the lab MX, a Postfix that accepts and discards, on 127.0.147.25 port 25
// (test/lab/postfix.ts), the smart host on 127.0.147.10 port 25, `mxguard policyd` (the built CLI) on 127.0.0.1.
// The smart host's smtp(8) reads the lab resolver from /etc/resolv.conf: its master runs in a private mount
// namespace with the lab's resolv.conf bind-mounted over it (`unshare -m`, which execs: the PID is master's).
// The "Exchange server" connects from 127.0.147.30 (given as --relay-for); a stranger from 127.0.147.31.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { formatTlsa, generateTlsa } from '../../src/dane/tlsa.js';
import { type PostfixSmartHost, postfixSmartHost } from '../../src/policyd/postfix-config.js';
import { BIN } from '../helpers/cli.js';
import { standardChain, TestPki } from '../helpers/pki.js';
import { Daemon, type DnssecLab, requireCommand, requireRoot, run, startDnssecLab } from '../lab/dnssec.js';
import { labCert, type PolicyHost, startPolicyHost } from '../lab/https-server.js';
import { INTERNAL_SERVICES, type LabPostfix, startPostfix } from '../lab/postfix.js';
import { freePort } from '../lab/redis.js';

const AUTHORITATIVE = '127.0.147.1';
const RESOLVER = '127.0.147.2';
const WEB = '127.0.147.3';
const MX = '127.0.147.25';
const SMART_HOST = '127.0.147.10';
const EXCHANGE = '127.0.147.30';
const STRANGER = '127.0.147.31';
const SMART_HOST_NAME = 'relay.lab.test';
const MASTER_DIR = '/usr/lib/postfix/sbin';

/** The services a smart host needs, none chrooted: the lab's internal ones plus the SMTP clients that relay. */
const SERVICES = [...INTERNAL_SERVICES, 'smtp      unix  - - n - - smtp', 'relay     unix  - - n - - smtp'];

/** A Postfix config directory with its own queue, data directory and maillog (no syslog here: LAB-NOTES). */
interface Instance {
  dir: string;
  configDir: string;
  maillog: string;
}

function newInstance(prefix: string): Instance {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  const configDir = join(dir, 'etc');
  for (const d of [configDir, join(dir, 'spool'), join(dir, 'data')]) mkdirSync(d, { mode: 0o755 });
  return { dir, configDir, maillog: join(dir, 'maillog') };
}

/**
 * Write the generated main.cf with the lab's own settings before it, replacing the values of `replace` (each must
 * be a setting the generator wrote), and master.cf: an smtpd listener, the services, the generated lines last
 * (a later master.cf entry of the same service replaces an earlier one).
 */
async function writeConfig(
  instance: Instance,
  config: PostfixSmartHost,
  replace: Record<string, string>,
  listener: string,
): Promise<void> {
  const postfixUser = Number((await run('id', ['-u', 'postfix'])).stdout.trim());
  chownSync(join(instance.dir, 'data'), postfixUser, 0);
  let mainCf = config.mainCf;
  for (const [name, value] of Object.entries(replace)) {
    const line = new RegExp(`^${name} = .*$`, 'm');
    assert.match(mainCf, line, `the generated main.cf sets no ${name}`);
    mainCf = mainCf.replace(line, `${name} = ${value}`);
  }
  const lab = [
    'compatibility_level = 3.6',
    `queue_directory = ${join(instance.dir, 'spool')}`,
    `data_directory = ${join(instance.dir, 'data')}`,
    `daemon_directory = ${MASTER_DIR}`,
    'shlib_directory = /usr/lib/postfix',
    `maillog_file = ${instance.maillog}`,
    `maillog_file_prefixes = ${instance.maillog}`,
    'inet_interfaces = loopback-only',
    'inet_protocols = ipv4',
    'alias_maps =',
    'alias_database =',
    // Retry a deferred message soon, so the log shows the second try too (not waited for).
    'minimal_backoff_time = 5s',
    'maximal_backoff_time = 10s',
    'queue_run_delay = 5s',
  ];
  writeFileSync(join(instance.configDir, 'main.cf'), `${lab.join('\n')}\n${mainCf}`);
  writeFileSync(
    join(instance.configDir, 'master.cf'),
    `${[`${listener}:25 inet n - n - - smtpd`, ...SERVICES].join('\n')}\n${config.masterCf}`,
  );
  writeFileSync(instance.maillog, '');
}

/** `postfix check` (creates the queue directories) and `postconf -n`: the exit status and every warning. */
async function postfixCheck(instance: Instance): Promise<{ ok: boolean; output: string }> {
  const postfix = requireCommand('postfix', 'postfix');
  const postconf = requireCommand('postconf', 'postfix');
  // postfix(1) prints its fatal errors only on a terminal (LAB-NOTES): give it one with script(1).
  const script = requireCommand('script', 'bsdutils');
  let output = '';
  let ok = true;
  for (const [command, args] of [
    [script, ['-qec', `${postfix} -c ${instance.configDir} check`, '/dev/null']],
    [postconf, ['-c', instance.configDir, '-n']],
  ] as const) {
    try {
      const r = await run(command, [...args]);
      // postconf prints the settings on stdout; warnings ("unused parameter", bad values) go to stderr.
      output += command === postconf ? r.stderr : `${r.stdout}${r.stderr}`;
    } catch (err) {
      ok = false;
      output += (err as Error).message;
    }
  }
  return { ok: ok && output.trim() === '', output };
}

describe('policyd postfix-config: the generated files pass postfix check', () => {
  before(() => requireRoot('postfix check of the generated configuration'));

  for (const [title, input] of [
    ['TCP policyd, IPv4 and IPv6 relays', { policyd: '127.0.0.1:8461' }],
    ['UNIX socket policyd (master.cf lines)', { policydSocket: '/run/mxguard/policyd.sock' }],
  ] as const) {
    it(title, async () => {
      const instance = newInstance('mxguard-smarthost-check-');
      try {
        const config = postfixSmartHost({
          relayFor: ['10.0.0.5', '192.168.10.0/24', '2001:db8:5::/64'],
          hostname: SMART_HOST_NAME,
          ...input,
        });
        await writeConfig(instance, config, {}, SMART_HOST);
        const check = await postfixCheck(instance);
        assert.ok(check.ok, `postfix check / postconf complained:\n${check.output}`);
        // What Postfix reads is what was generated (postconf -h prints the value of each parameter).
        const { stdout } = await run(requireCommand('postconf', 'postfix'), [
          '-c',
          instance.configDir,
          '-h',
          'mynetworks',
          'smtp_tls_security_level',
          'smtp_tls_policy_maps',
        ]);
        assert.deepEqual(stdout.trim().split('\n'), [
          '10.0.0.5/32 192.168.10.0/24 [2001:db8:5::]/64',
          'dane',
          config.policyMap,
        ]);
      } finally {
        rmSync(instance.dir, { recursive: true, force: true });
      }
    });
  }

  it('postfix check fails on a misspelt parameter (the check can fail)', async () => {
    const instance = newInstance('mxguard-smarthost-check-');
    try {
      const config = postfixSmartHost({ relayFor: ['10.0.0.5'], hostname: SMART_HOST_NAME });
      await writeConfig(
        instance,
        { ...config, mainCf: config.mainCf.replace('smtp_tls_loglevel', 'smtp_tls_loglvel') },
        {},
        SMART_HOST,
      );
      const check = await postfixCheck(instance);
      assert.equal(check.ok, false);
      assert.match(check.output, /unused parameter: smtp_tls_loglvel/);
    } finally {
      rmSync(instance.dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// A real relay: Exchange -> smart host -> lab MX, DANE and MTA-STS

/** A policy of RFC 8461 §3.2 listing one mx. */
const policy = (mx: string) => `version: STSv1\nmode: enforce\nmx: ${mx}\nmax_age: 86400\n`;

describe('policyd postfix-config: the smart host relays for Exchange with DANE and MTA-STS', () => {
  const pki = TestPki.create('mxguard-smarthost-pki-');
  const work = mkdtempSync(join(tmpdir(), 'mxguard-smarthost-'));
  const cleanups: Array<() => Promise<void>> = [];
  const smartHost = newInstance('mxguard-smarthost-');
  let dns: DnssecLab;
  let mx: LabPostfix;
  let web: PolicyHost;
  let policyd: Daemon;
  let master: Daemon;
  let rootPem: string;

  const smartHostLog = () => readFileSync(smartHost.maillog, 'utf8');
  const labLogs = () =>
    `--- smart host maillog\n${smartHostLog()}\n--- policyd\n${policyd?.log}\n--- lab MX\n${mx?.log()}`;

  before(async () => {
    requireRoot('the smart host lab (port 53 and 25 on 127.0.147.x, a private mount namespace)');
    const unshare = requireCommand('unshare', 'util-linux');
    const masterBin = requireCommand('master', 'postfix');

    // One CA; the MX certificate is valid for every MX name but mx.stsbad.test (MTA-STS must then refuse it).
    const chain = standardChain(pki, {
      host: 'mx.dane.test',
      sans: ['mx.dane.test', 'mx.danebad.test', 'mx.sts.test', 'mta-sts.sts.test', 'mta-sts.stsbad.test'],
    });
    const other = pki.issue('other', {
      subject: '/CN=other',
      issuer: chain.intermediate,
      sans: ['other.test'],
    });
    const relayCert = pki.issue('relay', {
      subject: `/CN=${SMART_HOST_NAME}`,
      issuer: chain.intermediate,
      sans: [SMART_HOST_NAME],
    });
    rootPem = chain.root.pem;
    const rootFile = pki.writeChain('root.pem', [chain.root]);
    const tlsa = (cert: typeof chain.leaf) => formatTlsa(generateTlsa(cert.x509, 3, 1, 1));

    dns = await startDnssecLab({
      authoritativeAddress: AUTHORITATIVE,
      resolverAddress: RESOLVER,
      zones: [
        { name: 'dane.test', records: ['@ MX 10 mx', `mx A ${MX}`, `_25._tcp.mx TLSA ${tlsa(chain.leaf)}`] },
        // TLSA of another key: DANE must refuse the MX (RFC 7672 §2.2: no fallback to unauthenticated TLS).
        { name: 'danebad.test', records: ['@ MX 10 mx', `mx A ${MX}`, `_25._tcp.mx TLSA ${tlsa(other)}`] },
        ...['sts', 'stsbad'].map((name) => ({
          name: `${name}.test`,
          security: 'insecure' as const,
          records: ['@ MX 10 mx', `mx A ${MX}`, '_mta-sts TXT "v=STSv1; id=1"', `mta-sts A ${WEB}`],
        })),
      ],
    });
    cleanups.push(() => dns.stop());

    web = await startPolicyHost({
      host: WEB,
      port: 0,
      defaultCert: labCert(chain.leaf.key, [chain.leaf, chain.intermediate]),
      sites: {
        'mta-sts.sts.test': { kind: 'serve', body: policy('mx.sts.test') },
        'mta-sts.stsbad.test': { kind: 'serve', body: policy('mx.stsbad.test') },
      },
    });
    cleanups.push(() => web.stop());

    mx = await startPostfix({
      domains: ['dane.test', 'danebad.test', 'sts.test', 'stsbad.test'],
      listeners: [
        {
          address: MX,
          keyPath: chain.leaf.key.path,
          chainPaths: [chain.leaf.certPath, chain.intermediate.certPath],
        },
      ],
    });
    cleanups.push(() => mx.stop());

    const policydPort = await freePort();
    policyd = new Daemon('mxguard policyd', process.execPath, [
      BIN,
      'policyd',
      '--listen',
      `127.0.0.1:${policydPort}`,
      '--data-dir',
      work,
      '--resolver',
      RESOLVER,
      '--ca-file',
      rootFile,
      '--allow-private',
      '--https-port',
      String(web.port),
    ]);
    cleanups.push(() => policyd.stop());
    await policyd.waitFor(() => canConnect('127.0.0.1', policydPort));

    // The configuration as generated, with the lab's certificate and trust anchor in place of the system's.
    const config = postfixSmartHost({
      relayFor: [EXCHANGE, '2001:db8:5::/64'],
      policyd: `127.0.0.1:${policydPort}`,
      hostname: SMART_HOST_NAME,
    });
    const chainFile = join(smartHost.configDir, 'smarthost-chain.pem');
    writeFileSync(
      chainFile,
      [relayCert.key.path, relayCert.certPath, chain.intermediate.certPath]
        .map((p) => readFileSync(p, 'utf8'))
        .join(''),
      { mode: 0o600 },
    );
    await writeConfig(
      smartHost,
      config,
      { smtpd_tls_chain_files: chainFile, smtp_tls_CApath: '' },
      SMART_HOST,
    );
    // Appended: the lab CA as the MTA-STS trust anchor (the generator points at the system store).
    writeFileSync(join(smartHost.configDir, 'main.cf'), `smtp_tls_CAfile = ${rootFile}\n`, { flag: 'a' });
    const check = await postfixCheck(smartHost);
    assert.ok(check.ok, check.output);

    const script = 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"';
    master = new Daemon('smart host master', unshare, [
      '-m',
      'sh',
      '-c',
      script,
      'sh',
      dns.resolvConfPath,
      masterBin,
      '-c',
      smartHost.configDir,
      '-s',
    ]);
    cleanups.push(() => master.stop());
    await master.waitFor(() => canConnect(SMART_HOST, 25));
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    rmSync(smartHost.dir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
    pki.remove();
  });

  /** Send one message to the smart host as the client at `from`; the reply or the SMTP error. */
  async function submit(from: string, to: string, options: { plain?: boolean } = {}) {
    const transport = nodemailer.createTransport({
      host: SMART_HOST,
      port: 25,
      localAddress: from,
      name: 'exchange.lab.test',
      requireTLS: options.plain !== true,
      ignoreTLS: options.plain === true,
      tls: { ca: rootPem, servername: SMART_HOST_NAME },
    });
    try {
      const info = await transport.sendMail({
        envelope: { from: 'sender@corp.test', to: [to] },
        raw: `From: sender@corp.test\r\nTo: ${to}\r\nSubject: smart host lab\r\n\r\nhello\r\n`,
      });
      return { ok: true as const, response: info.response };
    } catch (err) {
      const e = err as { responseCode?: number; response?: string; message: string };
      return { ok: false as const, code: e.responseCode, response: e.response ?? e.message };
    } finally {
      transport.close();
    }
  }

  /** The smart host's queue id from "250 2.0.0 Ok: queued as ABC123". */
  function queueId(response: string): string {
    const m = /queued as (\w+)/.exec(response);
    assert.ok(m, response);
    return m[1]!;
  }

  /** Wait (at most 60 s) for the status of this message's first delivery attempt: sent, deferred or bounced. */
  async function outcome(id: string): Promise<string> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const status = new RegExp(`${id}: .* status=(\\w+)`).exec(smartHostLog());
      if (status) return status[1]!;
      if (Date.now() > deadline) assert.fail(`no delivery status for ${id}\n${labLogs()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('relays a message from the Exchange server to a DANE domain, the MX verified by its TLSA record', async () => {
    const sent = await submit(EXCHANGE, 'user@dane.test');
    assert.ok(sent.ok, `${sent.response}\n${labLogs()}`);
    const status = await outcome(queueId(sent.response));
    assert.equal(status, 'sent', labLogs());
    assert.match(
      smartHostLog(),
      /Verified TLS connection established to mx\.dane\.test\[127\.0\.147\.25\]:25/,
      labLogs(),
    );
  });

  it('relays to an MTA-STS domain (policyd: secure match=), the MX certificate checked against the policy', async () => {
    const sent = await submit(EXCHANGE, 'user@sts.test');
    assert.ok(sent.ok, `${sent.response}\n${labLogs()}`);
    const status = await outcome(queueId(sent.response));
    assert.equal(status, 'sent', labLogs());
    assert.match(
      smartHostLog(),
      /Verified TLS connection established to mx\.sts\.test\[127\.0\.147\.25\]:25/,
    );
  });

  it('defers mail to an MX whose certificate matches none of its TLSA records (never plain or unauthenticated)', async () => {
    const sent = await submit(EXCHANGE, 'user@danebad.test');
    assert.ok(sent.ok, `${sent.response}\n${labLogs()}`);
    const id = queueId(sent.response);
    const status = await outcome(id);
    assert.equal(status, 'deferred', labLogs());
    assert.match(
      smartHostLog(),
      /mx\.danebad\.test\[127\.0\.147\.25\]:25: num=65:no matching DANE TLSA records/,
    );
  });

  it('defers mail to an MTA-STS MX whose certificate is not valid for its name', async () => {
    const sent = await submit(EXCHANGE, 'user@stsbad.test');
    assert.ok(sent.ok, `${sent.response}\n${labLogs()}`);
    const status = await outcome(queueId(sent.response));
    assert.equal(status, 'deferred', labLogs());
    assert.match(smartHostLog(), /mx\.stsbad\.test\[127\.0\.147\.25\]:25: num=62:hostname mismatch/);
  });

  it('refuses to relay for a client that is not an Exchange server (no open relay)', async () => {
    const refused = await submit(STRANGER, 'user@dane.test');
    assert.equal(refused.ok, false, 'the stranger could relay');
    assert.equal(refused.code, 554, refused.response);
    assert.match(refused.response, /Client host rejected: Access denied/);
  });

  it('refuses mail from the Exchange server in plain text (STARTTLS required)', async () => {
    const refused = await submit(EXCHANGE, 'user@dane.test', { plain: true });
    assert.equal(refused.ok, false, 'the smart host took mail in plain text');
    assert.equal(refused.code, 530, refused.response);
  });
});

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
