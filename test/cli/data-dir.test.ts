// No silent new database: every command that opens the store of `--data-dir` (or `--database FILE`)
// refuses a folder (a file) that holds none (exit 2, one line naming the path and how to create one)
// and leaves nothing behind;
// only `domain add` (and `serve`'s first start, see test/cli/serve.test.ts) create the store.
// The command is the built one (dist/cli/main.js, as `npm test` builds it).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { reportJson } from '../fixtures/tlsrpt/build.js';
import { runCli } from '../helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'mxguard-cli-data-dir-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const reportFile = join(root, 'report.json');
writeFileSync(reportFile, reportJson);

/** Each command that opens the store, with its arguments (the data dir comes last). */
const COMMANDS: string[][] = [
  ['domain', 'list'],
  ['domain', 'show', 'example.com'],
  ['domain', 'set', 'example.com', '--mode', 'enforce'],
  ['domain', 'remove', 'example.com'],
  ['reports', 'list'],
  ['reports', 'show', '1'],
  ['reports', 'import', reportFile],
  ['reports', 'delete', '1'],
  ['reports', 'purge', '--domain', 'example.com'],
  ['admin', 'unlock'],
  ['admin', 'reset-password'],
];
const ENV = { MXGUARD_ADMIN_PASSWORD: 'a-long-enough-password' };

function assertRefused(args: string[], dataDir: string): void {
  const r = runCli([...args, '--data-dir', dataDir], { env: ENV });
  assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
  assert.equal(r.stdout, '');
  // The command prefix is how mxguard was started (`mxguard`, `npx mxguard`, `node …/main.js`).
  const dir = escapeRegExp(dataDir);
  assert.match(
    r.stderr,
    new RegExp(
      `^mxguard: ${dir}: no mxguard database here \\(mxguard\\.sqlite\\); create one with ` +
        `\`(.+) serve --data-dir ${dir}\` or \`\\1 domain add DOMAIN --mx HOST --data-dir ${dir}\`\n$`,
    ),
  );
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('a --data-dir without an mxguard store is refused', () => {
  for (const args of COMMANDS) {
    it(`${args.slice(0, 2).join(' ')}: a folder that does not exist stays absent`, () => {
      const dataDir = join(root, `missing-${++dirs}`, 'data');
      assertRefused(args, dataDir);
      assert.equal(existsSync(join(dataDir, '..')), false);
    });

    it(`${args.slice(0, 2).join(' ')}: an empty folder stays empty`, () => {
      const dataDir = join(root, `empty-${++dirs}`);
      mkdirSync(dataDir);
      assertRefused(args, dataDir);
      assert.deepEqual(readdirSync(dataDir), []);
    });
  }
});

describe('a --database naming a SQLite file that does not exist is refused the same way', () => {
  for (const args of COMMANDS) {
    it(`${args.slice(0, 2).join(' ')}: the file and its folder stay absent`, () => {
      const file = join(root, `no-file-${++dirs}`, 'mxguard.sqlite');
      const r = runCli([...args, '--database', file], { env: { ...ENV, MXGUARD_DATABASE_URL: '' } });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      const path = escapeRegExp(file);
      assert.match(
        r.stderr,
        new RegExp(
          `^mxguard: ${path}: no mxguard database here \\(no such SQLite file\\); create one with ` +
            `\`(.+) serve --database ${path}\` or \`\\1 domain add DOMAIN --mx HOST --database ${path}\`\n$`,
        ),
      );
      assert.equal(existsSync(join(file, '..')), false);
    });
  }
});

describe('domain add creates the store', () => {
  it('in a folder that does not exist yet, and the other commands then use it', () => {
    const dataDir = join(root, `new-${++dirs}`, 'data');
    const add = runCli(['domain', 'add', 'example.com', '--mx', 'mx.example.com', '--data-dir', dataDir]);
    assert.equal(add.code, 0, add.stderr);
    assert.equal(existsSync(join(dataDir, 'mxguard.sqlite')), true);
    const list = runCli(['domain', 'list', '--data-dir', dataDir]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /example\.com/);
    const reports = runCli(['reports', 'import', reportFile, '--data-dir', dataDir]);
    assert.equal(reports.code, 0, reports.stderr);
  });

  it('in an empty folder', () => {
    const dataDir = join(root, `empty-${++dirs}`);
    mkdirSync(dataDir);
    const add = runCli(['domain', 'add', 'example.com', '--mx', 'mx.example.com', '--data-dir', dataDir]);
    assert.equal(add.code, 0, add.stderr);
    assert.equal(existsSync(join(dataDir, 'mxguard.sqlite')), true);
  });
});
