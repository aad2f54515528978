// `mxguard policyd` end to end: the built command (dist/cli/main.js) run as a child process against the
// lab, asked over TCP and UNIX sockets like Postfix asks; `policyd query/list/purge` on the same data
// directory while it runs; SIGTERM; a restart on the same cache; --config; usage errors.
// Build first: npx tsc -p tsconfig.json.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN } from '../helpers/cli.js';
import { type PolicydLab, policyText, SocketmapClient, startPolicydLab } from '../helpers/policyd-lab.js';
import { type LabRedis, startRedis } from '../lab/redis.js';

const secureAnswer = (domain: string) => `OK secure match=mx.${domain}:.${domain} servername=hostname`;

let lab: PolicydLab;
let work: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the command without blocking this process (the lab servers live here). */
function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, NO_COLOR: '1', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

interface Daemon {
  child: ChildProcess;
  port?: number;
  metricsPort?: number;
  logs: Array<Record<string, unknown>>;
  /** SIGTERM, and the exit code. */
  stop(): Promise<number | null>;
}

/** Start `policyd` and wait for its "policyd started" log line. */
function startDaemon(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Daemon> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'policyd', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    const logs: Array<Record<string, unknown>> = [];
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    let pending = '';
    let started = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`policyd did not start: ${JSON.stringify(logs)} ${pending}`));
    }, 30_000);
    child.stderr.on('data', (data) => {
      pending += data;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line);
        } catch {
          entry = { raw: line };
        }
        logs.push(entry);
        if (entry.msg === 'policyd started' && !started) {
          started = true;
          clearTimeout(timer);
          const port = (where: unknown) =>
            typeof where === 'string' ? Number(where.split(':').pop()) : undefined;
          resolve({
            child,
            port: port(entry.listen),
            metricsPort: port(entry.metrics),
            logs,
            stop: () => {
              child.kill('SIGTERM');
              return exited;
            },
          });
        }
      }
    });
    child.on('exit', (code) => {
      if (!started) {
        clearTimeout(timer);
        reject(new Error(`policyd exited with ${code}: ${JSON.stringify(logs)} ${pending}`));
      }
    });
  });
}

/** Ask until the answer is `expected` (the daemon takes in a purge within --store-sync seconds). */
async function waitForAnswer(client: SocketmapClient, key: string, expected: string): Promise<string> {
  let answer = '';
  for (let i = 0; i < 200; i++) {
    answer = await client.query(key);
    if (answer === expected) return answer;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return answer;
}

before(async () => {
  lab = await startPolicydLab();
  work = mkdtempSync(join(tmpdir(), 'mxguard-policyd-cli-'));
  const help = await run(['policyd', '--help']);
  assert.match(help.stdout, /--listen/, `${BIN} has no policyd command: build with npx tsc -p tsconfig.json`);
});

after(async () => {
  await lab.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('policyd as a child process', () => {
  const dataDir = () => join(work, 'data');
  let daemon: Daemon;
  let client: SocketmapClient;

  before(async () => {
    daemon = await startDaemon([
      '--listen',
      '127.0.0.1:0',
      '--metrics',
      '127.0.0.1:0',
      '--data-dir',
      dataDir(),
      '--store-sync',
      '1',
      ...lab.args,
    ]);
    client = await SocketmapClient.connect({ port: daemon.port! });
  });

  after(async () => {
    client?.close();
    await daemon?.stop();
  });

  it('answers over TCP', async () => {
    assert.equal(await client.query('enforce.test'), secureAnswer('enforce.test'));
    assert.equal(await client.query('dane.test'), 'OK dane-only');
    assert.equal(await client.query('bogus.test'), 'OK dane-only');
    assert.equal(await client.query('nopolicy.test'), 'NOTFOUND ');
    assert.equal(await client.query('[enforce.test]:25'), secureAnswer('enforce.test'));
    assert.equal(await client.query('.enforce.test'), 'NOTFOUND ');
  });

  it('serves /metrics', async () => {
    const text = await (await fetch(`http://127.0.0.1:${daemon.metricsPort}/metrics`)).text();
    assert.match(text, /^mxguard_policyd_queries_total\{answer="secure"\} [1-9]/m);
    assert.match(text, /^process_cpu_seconds_total /m);
  });

  it('policyd list shows the cached policies while the daemon runs', async () => {
    const listed = await run(['policyd', 'list', '--data-dir', dataDir()]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^DOMAIN +MODE +ID +EXPIRES +STATE$/m);
    assert.match(listed.stdout, /^enforce\.test +enforce +1 +\S+ +fresh$/m);
    const json = await run(['policyd', 'list', '--json', '--data-dir', dataDir()]);
    const entries = JSON.parse(json.stdout) as Array<{ domain: string; mode: string; stale: boolean }>;
    assert.deepEqual(
      entries.find((e) => e.domain === 'enforce.test'),
      { ...entries.find((e) => e.domain === 'enforce.test'), mode: 'enforce', stale: false },
    );
    assert.ok(entries.some((e) => e.domain === 'dane.test'));
    assert.ok(!entries.some((e) => e.domain === 'nopolicy.test'), 'no policy, nothing stored');
    // Options before the subcommand count too.
    const before = await run(['policyd', '--data-dir', dataDir(), 'list']);
    assert.equal(before.stdout, listed.stdout);
  });

  it('policyd list --stale finds a policy whose id changed in DNS', async () => {
    assert.equal(await client.query('changing.test'), secureAnswer('changing.test'));
    await lab.setTxtId('changing.test', '7');
    const stale = await run(['policyd', 'list', '--stale', '--data-dir', dataDir(), ...lab.args]);
    assert.equal(stale.code, 0, stale.stderr);
    assert.match(stale.stdout, /^changing\.test +enforce +1 +\S+ +DNS now publishes id 7$/m);
    assert.doesNotMatch(stale.stdout, /^enforce\.test/m);
    const json = JSON.parse(
      (await run(['policyd', 'list', '--stale', '--json', '--data-dir', dataDir(), ...lab.args])).stdout,
    );
    assert.deepEqual(
      json.map((e: { domain: string }) => e.domain),
      ['changing.test'],
    );
  });

  it('policyd purge makes the running daemon fetch a stale policy afresh', async () => {
    // The domain changed its policy but not its id: the daemon keeps the old one...
    lab.https.setSite('mta-sts.enforce.test', {
      kind: 'serve',
      body: policyText('enforce', ['new.enforce.test']),
    });
    try {
      assert.equal(await client.query('enforce.test'), secureAnswer('enforce.test'));
      // ... until the administrator purges it.
      const purged = await run(['policyd', 'purge', 'enforce.test', '--data-dir', dataDir()]);
      assert.equal(purged.code, 0, purged.stderr);
      assert.equal(purged.stdout, 'enforce.test: purged\n');
      const expected = 'OK secure match=new.enforce.test servername=hostname';
      assert.equal(await waitForAnswer(client, 'enforce.test', expected), expected);
      const again = await run(['policyd', 'purge', 'nopolicy.test', '--data-dir', dataDir()]);
      assert.equal(again.stdout, 'nopolicy.test: no cached policy\n');
    } finally {
      lab.https.setSite('mta-sts.enforce.test', {
        kind: 'serve',
        body: policyText('enforce', ['mx.enforce.test', '*.enforce.test']),
      });
    }
  });

  it('policyd query says what would be answered and why', async () => {
    const dane = await run(['policyd', 'query', 'dane.test', '--data-dir', dataDir(), ...lab.args]);
    assert.equal(dane.code, 0, dane.stderr);
    assert.match(dane.stdout, /^dane\.test: OK dane-only$/m);
    assert.match(dane.stdout, /^ {2}cache: {2}cached$/m);
    assert.match(
      dane.stdout,
      /^ {2}DANE: {3}all-usable: every MX host \(mx\.dane\.test\) has DNSSEC-secure usable TLSA/m,
    );
    assert.match(
      dane.stdout,
      /^ {10}mx\.dane\.test: usable, 1 of 1 TLSA records at _25\._tcp\.mx\.dane\.test\. usable$/m,
    );
    assert.match(
      dane.stdout,
      /^ {2}policy: id 1, mode enforce, max_age 604800, mx mx\.dane\.test, \*\.dane\.test$/m,
    );

    assert.equal(await client.query('testing.test'), 'NOTFOUND ');
    const json = await run([
      'policyd',
      'query',
      'testing.test',
      '--json',
      '--data-dir',
      dataDir(),
      ...lab.args,
    ]);
    const result = JSON.parse(json.stdout);
    assert.equal(result.answer.reply, 'NOTFOUND ');
    assert.match(result.answer.why, /testing policies are only reported/);
    assert.equal(result.policy.mode, 'testing');
    assert.equal(result.cache, 'cached');
    assert.equal(result.dane.verdict.kind, 'none');
    assert.deepEqual(result.dns, { kind: 'id', id: '1' });

    const key = await run(['policyd', 'query', '.example.test', '--data-dir', dataDir()]);
    assert.equal(
      key.stdout,
      '.example.test: NOTFOUND (parent-domain key (leading dot): MTA-STS never applies to subdomains)\n',
    );

    const broken = JSON.parse(
      (await run(['policyd', 'query', 'broken.test', '--json', '--data-dir', dataDir(), ...lab.args])).stdout,
    );
    assert.equal(broken.answer.reply, 'NOTFOUND ');
    assert.equal(broken.fetchFailure.code, 'MTASTS_FETCH_STATUS');
  });

  it('query does not write the cache', async () => {
    const query = await run(['policyd', 'query', 'signed.test', '--data-dir', dataDir(), ...lab.args]);
    assert.match(query.stdout, /^ {2}cache: {2}fetched now \(not cached\)$/m);
    const listed = JSON.parse((await run(['policyd', 'list', '--json', '--data-dir', dataDir()])).stdout);
    assert.ok(!listed.some((e: { domain: string }) => e.domain === 'signed.test'));
  });
});

describe('lifecycle', () => {
  it('SIGTERM stops cleanly and removes the UNIX socket; a restart answers from the SQLite cache', async () => {
    const dir = join(work, 'restart');
    const socket = join(work, 'policyd.sock');
    let daemon = await startDaemon(['--socket', socket, '--data-dir', dir, ...lab.args]);
    assert.equal(daemon.port, undefined, 'only --socket: no TCP listener');
    let client = await SocketmapClient.connect({ path: socket });
    assert.equal(await client.query('enforce.test'), secureAnswer('enforce.test'));
    client.close();
    assert.equal(await daemon.stop(), 0);
    assert.ok(daemon.logs.some((l) => l.msg === 'policyd stopped'));
    assert.ok(!existsSync(socket), 'socket file removed');

    const fetches = lab.https.requests.filter((r) => r.host === 'mta-sts.enforce.test').length;
    lab.https.setSite('mta-sts.enforce.test', { kind: 'serve', status: 500, body: 'down\n' });
    try {
      daemon = await startDaemon(['--socket', socket, '--data-dir', dir, ...lab.args]);
      client = await SocketmapClient.connect({ path: socket });
      assert.equal(await client.query('enforce.test'), secureAnswer('enforce.test'));
      assert.equal(lab.https.requests.filter((r) => r.host === 'mta-sts.enforce.test').length, fetches);
      client.close();
      assert.equal(await daemon.stop(), 0);
    } finally {
      lab.https.setSite('mta-sts.enforce.test', {
        kind: 'serve',
        body: policyText('enforce', ['mx.enforce.test', '*.enforce.test']),
      });
    }
  });

  it('--config with camelCase keys; MXGUARD_POLICYD_* over the file; the command line over both', async () => {
    const config = join(work, 'policyd-new.json');
    writeFileSync(
      config,
      JSON.stringify({
        listen: '127.0.0.1:0',
        dataDir: 'configured-new',
        testingMode: 'enforce',
        daneMode: 'dane-only',
        storeSync: 30,
      }),
    );
    const env = { MXGUARD_POLICYD_DANE_MODE: 'dane', MXGUARD_POLICYD_STORE_SYNC: '1' };
    const daemon = await startDaemon(['--config', config, ...lab.args], env);
    const started = daemon.logs.length;
    const client = await SocketmapClient.connect({ port: daemon.port! });
    for (let i = 0; i < 50; i++) {
      assert.equal(await client.query('testing.test'), 'OK secure match=mx.testing.test servername=hostname');
      assert.equal(await client.query('dane.test'), 'OK dane', 'the variable over the file');
    }
    client.close();
    assert.equal(await daemon.stop(), 0);
    // The hot path logs nothing: after the start line, only the stop lines (pino's JSON, level 30) and
    // the start-up check of the resolver (the lab's root DNSKEY has no AD), which ends when it will.
    assert.deepEqual(
      daemon.logs
        .slice(started)
        .filter((l) => !/^the resolver does not validate DNSSEC/.test(String(l.msg)))
        .map((l) => [l.level, l.msg]),
      [
        [30, 'stopping'],
        [30, 'policyd stopped'],
      ],
    );
    assert.ok(
      existsSync(join(work, 'configured-new', 'policyd.sqlite')),
      'dataDir relative to the config file',
    );
    assert.deepEqual(
      daemon.logs.filter((l) => /deprecated/.test(String(l.msg))),
      [],
      'no deprecation warning for the new keys',
    );
    const listed = await run(['policyd', 'list', '--json'], { MXGUARD_POLICYD_CONFIG: config });
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(JSON.parse(listed.stdout).some((e: { domain: string }) => e.domain === 'testing.test'));
    assert.equal(listed.stderr, '');
  });

  it('--config with the kebab-case keys of earlier releases: read, with a warning per old key', async () => {
    const config = join(work, 'policyd.json');
    writeFileSync(
      config,
      JSON.stringify({
        listen: '127.0.0.1:0',
        'data-dir': 'configured',
        'testing-mode': 'enforce',
        'dane-mode': 'dane',
      }),
    );
    const daemon = await startDaemon(['--config', config, '--dane-mode', 'dane-only', ...lab.args]);
    const client = await SocketmapClient.connect({ port: daemon.port! });
    assert.equal(await client.query('testing.test'), 'OK secure match=mx.testing.test servername=hostname');
    assert.equal(await client.query('dane.test'), 'OK dane-only');
    client.close();
    assert.equal(await daemon.stop(), 0);
    assert.ok(existsSync(join(work, 'configured', 'policyd.sqlite')), 'data-dir relative to the config file');
    const warnings = daemon.logs.filter((l) => l.level === 40 && /deprecated/.test(String(l.msg)));
    assert.deepEqual(
      warnings.map((l) =>
        String(l.msg)
          .match(/"([a-z-]+)" is deprecated: use "(\w+)"/)
          ?.slice(1),
      ),
      [
        ['data-dir', 'dataDir'],
        ['testing-mode', 'testingMode'],
        ['dane-mode', 'daneMode'],
      ],
    );
    // The admin commands read the same file and say the same on stderr.
    const listed = await run(['policyd', 'list', '--config', config]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^testing\.test /m);
    assert.match(
      listed.stderr,
      /^mxguard: policyd: warning: .*policyd\.json: "data-dir" is deprecated: use "dataDir"/m,
    );
  });
});

describe('two daemons sharing one Redis cache (--redis)', () => {
  let redis: LabRedis;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis.stop());

  it('the second MTA answers from the shared cache; a purge reaches both', async () => {
    const common = ['--listen', '127.0.0.1:0', '--redis', redis.url, '--store-sync', '1', ...lab.args];
    const first = await startDaemon(common);
    const second = await startDaemon(common);
    const a = await SocketmapClient.connect({ port: first.port! });
    const b = await SocketmapClient.connect({ port: second.port! });
    try {
      assert.equal(await a.query('testing.test'), 'NOTFOUND ');
      const fetches = lab.https.requests.filter((r) => r.host === 'mta-sts.testing.test').length;
      assert.equal(await b.query('testing.test'), 'NOTFOUND ');
      assert.equal(
        lab.https.requests.filter((r) => r.host === 'mta-sts.testing.test').length,
        fetches,
        'read from Redis',
      );
      const listed = await run(['policyd', 'list', '--json', '--redis', redis.url]);
      assert.ok(
        JSON.parse(listed.stdout).some((e: { domain: string }) => e.domain === 'testing.test'),
        listed.stderr,
      );

      lab.https.setSite('mta-sts.testing.test', {
        kind: 'serve',
        body: policyText('enforce', ['mx.testing.test']),
      });
      const purged = await run(['policyd', 'purge', 'testing.test', '--redis', redis.url]);
      assert.equal(purged.stdout, 'testing.test: purged\n', purged.stderr);
      const expected = 'OK secure match=mx.testing.test servername=hostname';
      assert.equal(await waitForAnswer(a, 'testing.test', expected), expected);
      assert.equal(await waitForAnswer(b, 'testing.test', expected), expected);
    } finally {
      lab.https.setSite('mta-sts.testing.test', {
        kind: 'serve',
        body: policyText('testing', ['mx.testing.test']),
      });
      a.close();
      b.close();
      assert.equal(await first.stop(), 0);
      assert.equal(await second.stop(), 0);
    }
  });
});

describe('policyd --help', () => {
  it('teaches the config file, its camelCase keys, the MXGUARD_POLICYD_* variables and the deprecation', async () => {
    const help = await run(['policyd', '--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /--config FILE or MXGUARD_POLICYD_CONFIG: JSON, camelCase keys/);
    assert.match(help.stdout, /"dataDir": "\/var\/lib\/mxguard"/);
    assert.match(help.stdout, /MXGUARD_POLICYD_\* environment \(MXGUARD_POLICYD_DATA_DIR/);
    assert.match(
      help.stdout,
      /kebab-case keys of earlier releases \("data-dir"\) are still read, with a warning/,
    );
    assert.match(help.stdout, /--log-level <level>/);
  });
});

describe('usage errors: exit 2, naming the input', () => {
  const cases: Array<[string[], RegExp]> = [
    [['policyd', '--listen', 'nowhere'], /--listen: expected HOST:PORT/],
    [
      ['policyd', '--listen', '127.0.0.1:99999'],
      /--listen: expected HOST:PORT or \[IPv6\]:PORT, got "127\.0\.0\.1:99999"/,
    ],
    [['policyd', '--dane-mode', 'maybe'], /--dane-mode: expected dane or dane-only/],
    [['policyd', '--testing-mode', 'strict'], /--testing-mode: expected ignore or enforce/],
    [['policyd', '--config', '/nonexistent/policyd.json'], /\/nonexistent\/policyd\.json: cannot read/],
    [['policyd', 'purge'], /give either a DOMAIN or --all/],
    [['policyd', 'purge', 'example.com', '--all'], /give either a DOMAIN or --all/],
  ];
  for (const [args, message] of cases) {
    it(args.join(' '), async () => {
      const result = await run(args);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, message);
    });
  }

  it('a bad MXGUARD_POLICYD_* variable, named', async () => {
    const result = await run(['policyd'], { MXGUARD_POLICYD_LISTEN: 'nowhere' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /MXGUARD_POLICYD_LISTEN: expected HOST:PORT/);
  });

  it('a config file that is not JSON, and one with a bad value, named by file and key', async () => {
    const broken = join(work, 'broken.json');
    writeFileSync(broken, '{"listen": ');
    const notJson = await run(['policyd', '--config', broken]);
    assert.equal(notJson.code, 2);
    assert.match(notJson.stderr, /broken\.json: not valid JSON/);
    const wrong = join(work, 'wrong.json');
    writeFileSync(wrong, JSON.stringify({ listen: '127.0.0.1:0', idleTimeout: 0 }));
    const bad = await run(['policyd', '--config', wrong]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /wrong\.json: idleTimeout: must be a whole number from 1 to 86400/);
  });

  it('a config file with an unknown key', async () => {
    const config = join(work, 'bad.json');
    writeFileSync(config, JSON.stringify({ listen: '127.0.0.1:0', colour: 'blue' }));
    const result = await run(['policyd', '--config', config]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /bad\.json: .*colour/);
  });

  it('an address in use', async () => {
    const first = await startDaemon([
      '--listen',
      '127.0.0.1:0',
      '--data-dir',
      join(work, 'inuse1'),
      ...lab.args,
    ]);
    const result = await run([
      'policyd',
      '--listen',
      `127.0.0.1:${first.port}`,
      '--data-dir',
      join(work, 'inuse2'),
      ...lab.args,
    ]);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      new RegExp(`cannot start: 127\\.0\\.0\\.1:${first.port}: address already in use`),
    );
    await first.stop();
  });
});
