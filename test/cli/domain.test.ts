// `mxguard domain add|list|show|set|remove`, the built command end to end, on a real store.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { parsePolicy } from '../../src/mtasts/policy.js';
import { parseStsRecord } from '../../src/mtasts/record.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { BIN, runCli } from '../helpers/cli.js';

let root: string;
let counter = 0;
const freshDir = () => join(root, `data-${++counter}`);
/** A data directory with an empty store, as `mxguard serve` leaves it on its first start. */
async function emptyStoreDir(): Promise<string> {
  const dir = freshDir();
  await (await openSqliteStore(dir)).close();
  return dir;
}

before(() => {
  root = mkdtempSync(join(tmpdir(), 'mxguard-cli-domain-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

/**
 * Enforcing runs the live check first (test/cli/domain-preflight.test.ts covers it against a lab): here a
 * resolver on a closed loopback port (the check cannot run) and --force, so nothing leaves the host.
 */
const FORCE_NO_DNS = ['--force', '--resolver', '127.0.0.1:9', '--timeout', '1'];

function domainCli(dataDir: string, ...args: string[]) {
  return runCli(['domain', ...args, '--data-dir', dataDir]);
}

/** The id in the `_mta-sts` TXT line of human output. */
function publishedId(stdout: string): string {
  const m = /_mta-sts\.[^\s]+\.\s+(?:\d+\s+IN\s+)?TXT\s+"([^"]+)"/.exec(stdout);
  assert.ok(m, `no _mta-sts TXT line in:\n${stdout}`);
  return parseStsRecord(m[1]!).record.id;
}

describe('domain add', () => {
  it('stores the domain and prints the _mta-sts TXT value and the other records', () => {
    const dir = freshDir();
    const r = domainCli(dir, 'add', 'Example.COM', '--mx', 'mail.example.com', '--mx', '*.mx.example.net');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^added example\.com: policy id \d{14}, mode testing\n/);
    const id = publishedId(r.stdout);
    assert.match(r.stdout, new RegExp(`_mta-sts\\.example\\.com\\.\\t3600\\tIN\\tTXT\\t"v=STSv1; id=${id}"`));
    assert.match(
      r.stdout,
      /_smtp\._tls\.example\.com\.\t3600\tIN\tTXT\t"v=TLSRPTv1; rua=mailto:tlsrpt@example\.com"/,
    );
    assert.match(r.stderr, /note: mode testing/);
    assert.match(r.stderr, /note: mta-sts\.example\.com needs an A\/AAAA or CNAME record/);
  });

  it('--json gives the stored domain and its record set', () => {
    const dir = freshDir();
    const r = domainCli(
      dir,
      'add',
      'example.org',
      '--mx',
      'mx.example.org',
      '--mode',
      'enforce',
      '--max-age',
      '1209600',
      '--rua',
      'https://reports.example.org/tlsrpt',
      '--policy-host-target',
      '192.0.2.10',
      '--json',
      ...FORCE_NO_DNS,
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.domain.name, 'example.org');
    assert.equal(out.domain.mode, 'enforce');
    assert.deepEqual(out.domain.rua, ['https://reports.example.org/tlsrpt']);
    const { policy } = parsePolicy(out.domain.policyText, { strict: true });
    assert.deepEqual(policy, { mode: 'enforce', mx: ['mx.example.org'], maxAge: 1209600, extensions: [] });
    assert.deepEqual(
      out.records.records.map((rec: { name: string; type: string; value: string }) => [
        rec.name,
        rec.type,
        rec.value,
      ]),
      [
        ['_mta-sts.example.org', 'TXT', `v=STSv1; id=${out.domain.policyId}`],
        ['_smtp._tls.example.org', 'TXT', 'v=TLSRPTv1; rua=https://reports.example.org/tlsrpt'],
        ['mta-sts.example.org', 'A', '192.0.2.10'],
      ],
    );
  });

  const usage: Array<[string, string[], RegExp]> = [
    ['no --mx in testing mode', [], /--mx: give at least one MX host/],
    ['a bad mx', ['--mx', 'mail..example.com'], /--mx mail\.\.example\.com: .*empty label/],
    [
      'a bad mode',
      ['--mx', 'mx.example.com', '--mode', 'strict'],
      /--mode: must be testing, enforce or none/,
    ],
    [
      'a max-age above the RFC limit',
      ['--mx', 'mx.example.com', '--max-age', '31557601'],
      /--max-age: must be between/,
    ],
    ['an http rua', ['--mx', 'mx.example.com', '--rua', 'http://example.com/r'], /--rua: .*https/],
  ];
  for (const [name, args, message] of usage) {
    it(`exit 2 for ${name}, nothing stored`, async () => {
      const dir = freshDir();
      const r = domainCli(dir, 'add', 'example.com', ...args);
      assert.equal(r.code, 2, r.stdout);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /); // no stack trace
      assert.equal(existsSync(dir), false, 'no data directory or store made for a refused add');
      const existing = await emptyStoreDir();
      assert.equal(domainCli(existing, 'add', 'example.com', ...args).code, 2);
      const list = domainCli(existing, 'list', '--json');
      assert.deepEqual(JSON.parse(list.stdout), { domains: [] });
    });
  }

  it('exit 2 for a bad domain name, exit 1 for a domain that exists', () => {
    const dir = freshDir();
    const bad = domainCli(dir, 'add', 'exa_mple.com', '--mx', 'mx.example.com');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /exa_mple\.com: not a valid domain name/);
    assert.equal(domainCli(dir, 'add', 'example.com', '--mx', 'mx.example.com').code, 0);
    const again = domainCli(dir, 'add', 'EXAMPLE.com.', '--mx', 'mx.example.com');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /domain example\.com already exists/);
  });

  it('exit 2 when the data directory cannot be used', () => {
    const file = join(root, `file-${++counter}`);
    writeFileSync(file, 'x');
    const r = domainCli(join(file, 'sub'), 'add', 'example.com', '--mx', 'mx.example.com');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /mxguard\.sqlite: cannot open the database/);
  });
});

describe('domain list / show', () => {
  it('list shows every domain; --json is data', async () => {
    const dir = await emptyStoreDir();
    assert.match(domainCli(dir, 'list').stdout, /no domains configured/);
    domainCli(dir, 'add', 'b.example', '--mx', 'mx.b.example');
    domainCli(dir, 'add', 'a.example', '--mx', 'mx.a.example', '--mode', 'enforce', ...FORCE_NO_DNS);
    const r = domainCli(dir, 'list');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^DOMAIN\s+MODE\s+POLICY ID\s+MX\s+MAX_AGE\s+LAST CHECK\s+OPEN ALERTS$/);
    assert.match(lines[1]!, /^a\.example\s+enforce\s+\d{14}\s+mx\.a\.example\s+604800\s+never\s+0$/);
    assert.match(lines[2]!, /^b\.example\s+testing\s+\d{14}\s+mx\.b\.example\s+604800\s+never\s+0$/);
    const json = JSON.parse(domainCli(dir, 'list', '--json').stdout);
    assert.deepEqual(
      json.domains.map((d: { name: string }) => d.name),
      ['a.example', 'b.example'],
    );
  });

  it('show prints settings, the policy, its history and the records (bind, powershell, json)', () => {
    const dir = freshDir();
    domainCli(dir, 'add', 'example.com', '--mx', 'mail.example.com');
    domainCli(dir, 'set', 'example.com', '--mode', 'enforce', ...FORCE_NO_DNS);
    const r = domainCli(dir, 'show', 'EXAMPLE.COM');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^domain: {5}example\.com\nmode: {7}enforce\n/);
    assert.match(
      r.stdout,
      /policy \(https:\/\/mta-sts\.example\.com\/\.well-known\/mta-sts\.txt\):\n {2}version: STSv1\n {2}mode: enforce\n {2}mx: mail\.example\.com\n {2}max_age: 604800\n/,
    );
    const history = [...r.stdout.matchAll(/^ {2}(\d{14}) {2}\S+ {2}(.*)$/gm)].map((m) => [m[1], m[2]]);
    assert.equal(history.length, 2);
    assert.ok(history[0]![0]! > history[1]![0]!, 'newest first');
    assert.match(history[0]![1]!, /^mode enforce/);
    assert.match(history[1]![1]!, /^mode testing/);
    assert.equal(publishedId(r.stdout), history[0]![0]);

    const ps = domainCli(dir, 'show', 'example.com', '--format', 'powershell');
    assert.equal(ps.code, 0, ps.stderr);
    assert.match(
      ps.stdout,
      /Add-DnsServerResourceRecord -ZoneName 'example\.com' -Name '_mta-sts' .* -Txt -DescriptiveText 'v=STSv1; id=\d{14}'/,
    );

    const json = JSON.parse(domainCli(dir, 'show', 'example.com', '--json').stdout);
    assert.equal(json.domain.mode, 'enforce');
    assert.equal(json.history.length, 2);
    assert.equal(json.history[0].policyId, json.domain.policyId);
    assert.equal(json.records.records[0].value, `v=STSv1; id=${json.domain.policyId}`);
  });

  it('show: exit 2 for an unknown domain or format', () => {
    const dir = freshDir();
    domainCli(dir, 'add', 'example.com', '--mx', 'mail.example.com');
    const unknown = domainCli(dir, 'show', 'nope.example');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /nope\.example: no such domain/);
    const format = domainCli(dir, 'show', 'example.com', '--format', 'yaml');
    assert.equal(format.code, 2);
    assert.match(format.stderr, /--format: unknown format "yaml"/);
  });
});

describe('domain set', () => {
  it('a policy change prints the new, greater id and its TXT record; the same change again is "unchanged"', () => {
    const dir = freshDir();
    const first = publishedId(domainCli(dir, 'add', 'example.com', '--mx', 'mail.example.com').stdout);
    const set = domainCli(
      dir,
      'set',
      'example.com',
      '--mode',
      'enforce',
      '--max-age',
      '1209600',
      ...FORCE_NO_DNS,
    );
    assert.equal(set.code, 0, set.stderr);
    const second = publishedId(set.stdout);
    assert.ok(second > first, `${second} > ${first}`);
    assert.match(
      set.stdout,
      new RegExp(`^example\\.com: policy changed, new id ${second} \\(was ${first}\\)`),
    );
    assert.match(set.stdout, /mode: enforce\n {2}mx: mail\.example\.com\n {2}max_age: 1209600/);
    // the same second again still gets a greater id
    const third = publishedId(domainCli(dir, 'set', 'example.com', '--max-age', '1209601').stdout);
    assert.ok(third > second, `${third} > ${second}`);

    const same = domainCli(dir, 'set', 'example.com', '--mode', 'enforce');
    assert.equal(same.code, 0, same.stderr);
    assert.equal(same.stdout, `example.com: unchanged (policy id ${third})\n`);
  });

  it('--mx replaces the list; --rua changes only the TLS-RPT record, not the policy id', () => {
    const dir = freshDir();
    const id = publishedId(domainCli(dir, 'add', 'example.com', '--mx', 'a.example.com').stdout);
    const rua = domainCli(dir, 'set', 'example.com', '--rua', 'mailto:reports@example.net');
    assert.equal(rua.code, 0, rua.stderr);
    assert.match(
      rua.stdout,
      /TLS-RPT addresses changed; publish:\n {2}_smtp\._tls\.example\.com\.\tTXT\t"v=TLSRPTv1; rua=mailto:reports@example\.net"/,
    );
    assert.doesNotMatch(rua.stdout, /policy changed/);
    const mx = JSON.parse(
      domainCli(dir, 'set', 'example.com', '--mx', 'b.example.com', '--mx', 'c.example.com', '--json').stdout,
    );
    assert.deepEqual(mx.domain.mx, ['b.example.com', 'c.example.com']);
    assert.equal(mx.policyChanged, true);
    assert.equal(mx.ruaChanged, false);
    assert.ok(mx.domain.policyId > id);
  });

  const usage: Array<[string, string[], RegExp]> = [
    ['no change given', [], /give at least one of --mx, --mode, --max-age, --rua/],
    ['a bad mode', ['--mode', 'off'], /--mode: must be testing, enforce or none/],
    ['a bad max-age', ['--max-age', 'week'], /--max-age: expected a whole number/],
    ['a bad mx', ['--mx', 'bad..host'], /mx "bad\.\.host"/],
    ['a bad rua', ['--rua', 'reports@example.com'], /rua: .*no scheme/],
  ];
  for (const [name, args, message] of usage) {
    it(`exit 2 for ${name}, the domain unchanged`, () => {
      const dir = freshDir();
      domainCli(dir, 'add', 'example.com', '--mx', 'a.example.com');
      const before = domainCli(dir, 'show', 'example.com', '--json').stdout;
      const r = domainCli(dir, 'set', 'example.com', ...args);
      assert.equal(r.code, 2, r.stdout);
      assert.match(r.stderr, message);
      assert.equal(domainCli(dir, 'show', 'example.com', '--json').stdout, before);
    });
  }

  it('exit 2 for an unknown domain', async () => {
    const r = domainCli(await emptyStoreDir(), 'set', 'nope.example', '--mode', 'enforce');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /nope\.example: no such domain/);
  });
});

describe('domain remove', () => {
  it('removes the domain, warns about cached policies; exit 2 the second time', () => {
    const dir = freshDir();
    domainCli(dir, 'add', 'example.com', '--mx', 'a.example.com');
    const r = domainCli(dir, 'remove', 'example.com');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^removed example\.com/);
    assert.match(r.stderr, /senders keep its policy cached for up to max_age 604800s/);
    assert.deepEqual(JSON.parse(domainCli(dir, 'list', '--json').stdout), { domains: [] });
    const again = domainCli(dir, 'remove', 'example.com');
    assert.equal(again.code, 2);
    assert.match(again.stderr, /example\.com: no such domain/);
  });
});

describe('domain commands while serve holds the database', () => {
  it('work beside an open store connection', async () => {
    const dir = freshDir();
    const serve = await openSqliteStore(dir);
    try {
      assert.equal(domainCli(dir, 'add', 'example.com', '--mx', 'a.example.com').code, 0);
      assert.equal((await serve.getDomain('example.com'))?.mode, 'testing');
      await serve.updateDomain('example.com', { mode: 'enforce' }, new Date());
      const shown = JSON.parse(domainCli(dir, 'show', 'example.com', '--json').stdout);
      assert.equal(shown.domain.mode, 'enforce');
    } finally {
      await serve.close();
    }
  });

  it('wait for a write transaction another process holds, then succeed (busy timeout)', async () => {
    const dir = freshDir();
    (await openSqliteStore(dir)).close();
    const holder = new Database(join(dir, 'mxguard.sqlite'));
    holder.exec('BEGIN IMMEDIATE');
    const child = spawn(
      process.execPath,
      [BIN, 'domain', 'add', 'example.com', '--mx', 'a.example.com', '--data-dir', dir],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    // Keep the lock while the command starts and tries to write, then let it go.
    await new Promise((r) => setTimeout(r, 700));
    holder.exec('COMMIT');
    holder.close();
    assert.equal(await exited, 0, stderr);
    const list = JSON.parse(domainCli(dir, 'list', '--json').stdout);
    assert.equal(list.domains[0].name, 'example.com');
  });
});

describe('domain --help', () => {
  for (const sub of ['add', 'list', 'show', 'set', 'remove']) {
    it(`${sub} --help has an example and the exit status`, () => {
      const r = runCli(['domain', sub, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`\\$ mxguard domain ${sub}`));
      assert.match(r.stdout, /Exit status: 0/);
      assert.match(r.stdout, /--data-dir <dir>/);
    });
  }
});
