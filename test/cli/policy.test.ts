// `mxguard policy create|validate` through the built binary.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/cli.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/mtasts/', import.meta.url));
const fixture = (name: string) => join(FIXTURES, name);
const tmp = mkdtempSync(join(tmpdir(), 'mxguard-cli-policy-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('policy create', () => {
  it('defaults to mode testing and max_age 604800', () => {
    const r = runCli(['policy', 'create', '--mx', 'mail.example.com']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'version: STSv1\nmode: testing\nmx: mail.example.com\nmax_age: 604800\n');
    assert.equal(r.stderr, '');
  });

  it('--mx is repeatable and takes several values', () => {
    const r = runCli([
      'policy',
      'create',
      '--mx',
      'a.example.com',
      '*.b.example.net',
      '--mx',
      'c.example.org',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      'version: STSv1\nmode: testing\nmx: a.example.com\nmx: *.b.example.net\nmx: c.example.org\nmax_age: 604800\n',
    );
  });

  it('--mode and --max-age', () => {
    const r = runCli([
      'policy',
      'create',
      '--mode',
      'enforce',
      '--max-age',
      '1209600',
      '--mx',
      'mx.example.com',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 1209600\n');
  });

  it('--json prints policy, mode, maxAge and mx', () => {
    const r = runCli(['policy', 'create', '--mx', 'mx.example.com', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      policy: 'version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: 604800\n',
      mode: 'testing',
      maxAge: 604800,
      mx: ['mx.example.com'],
    });
  });

  it('mode none needs no --mx', () => {
    const r = runCli(['policy', 'create', '--mode', 'none']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'version: STSv1\nmode: none\nmax_age: 604800\n');
  });

  it('a short max_age is allowed with a warning on stderr', () => {
    const r = runCli(['policy', 'create', '--mx', 'mx.example.com', '--max-age', '3600']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /max_age: 3600\n$/);
    assert.match(r.stderr, /warning \[MTASTS_MAX_AGE_UNDER_DAY\]/);
  });

  it('--preset adds the mx patterns of a hosted mail service', () => {
    const r = runCli(['policy', 'create', '--preset', 'google-workspace', '--mx', 'backup.example.com']);
    assert.equal(r.code, 0, r.stderr);
    const mx = r.stdout.match(/^mx: .*$/gm) ?? [];
    assert.ok(mx.length >= 2, r.stdout);
    assert.equal(mx[0], 'mx: backup.example.com');
    const valid = runCli(['policy', 'validate', '-'], { input: r.stdout });
    assert.equal(valid.code, 0, valid.stdout);
    assert.equal(runCli(['policy', 'create', '--preset', 'no-such-provider']).code, 2);
  });

  it('duplicate --mx values are listed once', () => {
    const r = runCli(['policy', 'create', '--mx', 'mx.example.com', 'MX.example.com']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.match(/^mx: /gm)?.length, 1);
  });

  const usageErrors: Array<[string, string[], RegExp]> = [
    ['underscore in --mx', ['--mx', 'mail_1.example.com'], /--mx: mx "mail_1\.example\.com": .*"_"/],
    ['double wildcard', ['--mx', '*.*.example.com'], /--mx: mx "\*\.\*\.example\.com": .*wildcard/],
    ['trailing dot', ['--mx', 'mx.example.com.'], /--mx: .*ends with a dot/],
    ['no --mx in mode testing', [], /--mx: mode testing needs at least one MX host/],
    ['no --mx in mode enforce', ['--mode', 'enforce'], /--mx: mode enforce needs/],
    [
      'max-age not a number',
      ['--mx', 'a.b', '--max-age', '1w'],
      /--max-age: expected a whole number, got "1w"/,
    ],
    [
      'max-age too big',
      ['--mx', 'a.b', '--max-age', '31557601'],
      /--max-age: must be between 0 and 31557600/,
    ],
    ['unknown mode', ['--mx', 'a.b', '--mode', 'strict'], /argument 'strict' is invalid/],
  ];
  for (const [name, args, message] of usageErrors) {
    it(`${name}: exit 2 with a clear line`, () => {
      const r = runCli(['policy', 'create', ...args]);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    });
  }

  it('what create prints passes validate', () => {
    const created = runCli([
      'policy',
      'create',
      '--mode',
      'enforce',
      '--mx',
      'a.example.com',
      '*.example.net',
    ]);
    const r = runCli(['policy', 'validate', '-'], { input: created.stdout });
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.stdout, '<stdin>: valid (mode enforce, max_age 604800, 2 mx)\n');
  });

  it('--help has the defaults, the advice on enforce and an example', () => {
    const r = runCli(['policy', 'create', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /default: "testing"/);
    assert.match(r.stdout, /default: "604800"/);
    assert.match(r.stdout, /enforce once the TLS-RPT reports are clean/);
    assert.match(r.stdout, /Examples:\n {2}mxguard policy create --mx/);
  });
});

describe('policy validate', () => {
  it('a valid policy: exit 0 and a summary line', () => {
    const file = fixture('enforce-two-mx.txt');
    const r = runCli(['policy', 'validate', file]);
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.stdout, `${file}: valid (mode enforce, max_age 604800, 2 mx)\n`);
  });

  it('warnings are printed and still exit 0', () => {
    const file = fixture('testing-crlf-warnings.txt');
    const r = runCli(['policy', 'validate', file]);
    assert.equal(r.code, 0, r.stdout);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines[0], `${file}: valid (mode testing, max_age 86400, 1 mx)`);
    assert.deepEqual(lines.slice(1).sort(), [
      `${file}: warning [MTASTS_FIELD_TYPO] line 4: unknown field "ms" is ignored by senders; did you mean "mx"?`,
      `${file}: warning [MTASTS_MAX_AGE_UNDER_WEEK] line 3: max_age 86400 is under one week (604800); RFC 8461 §3.2 recommends weeks or more once the policy is stable`,
    ]);
  });

  it('an invalid policy: exit 1, one line per error naming the file and the line', () => {
    const file = fixture('invalid-several.txt');
    const r = runCli(['policy', 'validate', file]);
    assert.equal(r.code, 1);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines[0], `${file}: invalid (4 errors)`);
    const errors = lines.slice(1);
    assert.equal(errors.length, 4);
    for (const [i, [code, line]] of [
      ['MTASTS_POLICY_MODE', 2],
      ['MTASTS_POLICY_SYNTAX', 3],
      ['MTASTS_POLICY_MX', 4],
      ['MTASTS_POLICY_MAX_AGE', 5],
    ].entries()) {
      assert.ok(errors[i]!.startsWith(`${file}: error [${code}] line ${line}: `), errors[i]);
    }
  });

  it('a repeated mode is an error for validate (strict)', () => {
    const r = runCli(['policy', 'validate', fixture('duplicate-mode.txt')]);
    assert.equal(r.code, 1);
    assert.match(
      r.stdout,
      /error \[MTASTS_POLICY_DUPLICATE\] line 3: "mode" appears again \(first on line 2\)/,
    );
  });

  it('reads standard input with "-"', () => {
    const r = runCli(['policy', 'validate', '-'], { input: 'version: STSv1\nmode: none\nmax_age: 604800\n' });
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.stdout, '<stdin>: valid (mode none, max_age 604800, 0 mx)\n');
  });

  it('--json for a valid policy', () => {
    const file = fixture('testing-crlf-warnings.txt');
    const r = runCli(['policy', 'validate', file, '--json']);
    assert.equal(r.code, 0);
    const out = JSON.parse(r.stdout);
    assert.equal(out.file, file);
    assert.equal(out.valid, true);
    assert.deepEqual(out.policy, {
      mode: 'testing',
      maxAge: 86400,
      mx: ['mail.example.com'],
      extensions: [['ms', 'mail2.example.com']],
    });
    assert.deepEqual(out.errors, []);
    assert.deepEqual(out.warnings.map((w: { code: string }) => w.code).sort(), [
      'MTASTS_FIELD_TYPO',
      'MTASTS_MAX_AGE_UNDER_WEEK',
    ]);
  });

  it('--json for an invalid policy', () => {
    const r = runCli(['policy', 'validate', fixture('invalid-several.txt'), '--json']);
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout);
    assert.equal(out.valid, false);
    assert.equal('policy' in out, false);
    assert.deepEqual(
      out.errors.map((p: { code: string; where: string; severity: string }) => [p.severity, p.code, p.where]),
      [
        ['error', 'MTASTS_POLICY_MODE', 'line 2'],
        ['error', 'MTASTS_POLICY_SYNTAX', 'line 3'],
        ['error', 'MTASTS_POLICY_MX', 'line 4'],
        ['error', 'MTASTS_POLICY_MAX_AGE', 'line 5'],
      ],
    );
    assert.deepEqual(out.warnings, []);
  });

  it('content that is not UTF-8 is invalid (exit 1)', () => {
    const file = join(tmp, 'latin1.txt');
    writeFileSync(
      file,
      Buffer.from('version: STSv1\nmode: none\nmax_age: 604800\nx: gr\xfc\xdfe\n', 'latin1'),
    );
    const r = runCli(['policy', 'validate', file]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /not valid UTF-8/);
  });

  it('a byte-order mark is invalid (exit 1)', () => {
    const file = join(tmp, 'bom.txt');
    writeFileSync(file, '\uFEFFversion: STSv1\nmode: none\nmax_age: 604800\n');
    const r = runCli(['policy', 'validate', file]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /error \[MTASTS_POLICY_BOM\] line 1/);
  });

  it('an unreadable file: exit 2 naming it', () => {
    const missing = join(tmp, 'missing.txt');
    const r = runCli(['policy', 'validate', missing]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `mxguard: ${missing}: cannot read: no such file\n`);
    const dir = runCli(['policy', 'validate', tmp]);
    assert.equal(dir.code, 2);
    assert.match(dir.stderr, /is a directory/);
  });

  it('no file argument: exit 2', () => {
    const r = runCli(['policy', 'validate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /missing required argument 'file'/);
  });

  it('--help has an example', () => {
    const r = runCli(['policy', 'validate', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Examples:\n {2}mxguard policy validate/);
  });
});
