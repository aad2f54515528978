// TSIG key files (src/dns/tsig-key.ts): BIND's `key "name" { ... };` (tsig-keygen), Knot's YAML (keymgr -t,
// made here with the real keymgr when it is installed) and the one-line `hmac-sha256:name:secret`, for the
// three algorithms; every bad input is named with TSIG_KEY_SYNTAX / TSIG_KEY_UNREADABLE.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseTsigKey, readTsigKeyFile, TSIG_ALGORITHMS } from '../../src/dns/tsig-key.js';
import { DnsUpdateError } from '../../src/dns/update-error.js';
import { requireCommand } from '../lab/dnssec.js';

const SECRET = Buffer.from('a secret of thirty-two bytes!!!!');
const B64 = SECRET.toString('base64');

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof DnsUpdateError, String(err));
    return err.code;
  }
  assert.fail('no error');
}

describe('parseTsigKey', () => {
  for (const algorithm of TSIG_ALGORITHMS) {
    it(`reads BIND's key statement with ${algorithm}`, () => {
      const text = `# made by tsig-keygen\nkey "Upd.Example." {\n\talgorithm ${algorithm};\n\tsecret "${B64}";\n};\n`;
      assert.deepEqual(parseTsigKey(text, 'k.conf'), { name: 'upd.example', algorithm, secret: SECRET });
    });
    it(`reads the one-line form with ${algorithm}`, () => {
      assert.deepEqual(parseTsigKey(`${algorithm}:upd:${B64}\n`, 'arg'), {
        name: 'upd',
        algorithm,
        secret: SECRET,
      });
    });
    it(`reads Knot's YAML with ${algorithm}`, () => {
      const text = `key:\n  - id: upd\n    algorithm: ${algorithm}\n    secret: ${B64}\n`;
      assert.deepEqual(parseTsigKey(text, 'knot.key'), { name: 'upd', algorithm, secret: SECRET });
    });
  }

  it('reads what keymgr -t prints (real Knot tool)', () => {
    const keymgr = requireCommand('keymgr', 'knot');
    const text = execFileSync(keymgr, ['-t', 'knot-made', 'hmac-sha384'], { encoding: 'utf8' });
    const key = parseTsigKey(text, 'keymgr');
    assert.equal(key.name, 'knot-made');
    assert.equal(key.algorithm, 'hmac-sha384');
    assert.equal(key.secret.toString('base64'), /secret: (\S+)/.exec(text)![1]);
  });

  it('takes BIND comments and an unquoted name, and the algorithm in upper case', () => {
    const text = `/* key */ key upd { // here\n algorithm HMAC-SHA512; secret "${B64}"; };`;
    assert.deepEqual(parseTsigKey(text, 'k'), { name: 'upd', algorithm: 'hmac-sha512', secret: SECRET });
  });

  it('a secret holding "//" (base64 may) is the secret, not the start of a comment', () => {
    // The lab's random secrets held "//" about once in a hundred runs, and the key file was refused.
    const b64 = 'AAAA//8AQUJD//8=';
    const text = `key "upd" { algorithm hmac-sha256; secret "${b64}"; }; // a comment\n# another\n`;
    assert.deepEqual(parseTsigKey(text, 'k'), {
      name: 'upd',
      algorithm: 'hmac-sha256',
      secret: Buffer.from(b64, 'base64'),
    });
  });

  const bad: Array<[string, string, RegExp]> = [
    ['empty', '', /no TSIG key found/],
    ['hmac-md5', `key "k" { algorithm hmac-md5; secret "${B64}"; };`, /"hmac-md5" is not supported/],
    ['hmac-sha1 one-line', `hmac-sha1:k:${B64}`, /"hmac-sha1" is not supported/],
    ['no secret', 'key "k" { algorithm hmac-sha256; };', /no "secret/],
    ['no algorithm', `key "k" { secret "${B64}"; };`, /no "algorithm/],
    ['unclosed', `key "k" { algorithm hmac-sha256; secret "${B64}";`, /no closing/],
    ['secret not base64', 'key "k" { algorithm hmac-sha256; secret "no*base64"; };', /not base64/],
    ['bad name', `hmac-sha256:a..b:${B64}`, /not a domain name/],
    ['Knot key without secret', 'key:\n  - id: k\n    algorithm: hmac-sha256\n', /no "secret:"/],
    ['huge', 'x'.repeat(70_000), /not a key file/],
  ];
  for (const [title, text, message] of bad) {
    it(`names the problem: ${title}`, () => {
      assert.equal(
        code(() => parseTsigKey(text, 'the.key')),
        'TSIG_KEY_SYNTAX',
      );
      assert.throws(
        () => parseTsigKey(text, 'the.key'),
        (err: Error) => {
          assert.match(err.message, /^the\.key: /);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }
});

describe('readTsigKeyFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-tsig-key-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a key file', async () => {
    const path = join(dir, 'upd.key');
    writeFileSync(path, `key "upd" { algorithm hmac-sha256; secret "${B64}"; };\n`);
    assert.deepEqual(await readTsigKeyFile(path), { name: 'upd', algorithm: 'hmac-sha256', secret: SECRET });
  });

  it('a missing file is TSIG_KEY_UNREADABLE naming the path', async () => {
    const path = join(dir, 'missing.key');
    await assert.rejects(readTsigKeyFile(path), (err: DnsUpdateError) => {
      assert.equal(err.code, 'TSIG_KEY_UNREADABLE');
      assert.ok(err.message.startsWith(`${path}: `), err.message);
      return true;
    });
  });

  it('a file that is no key is TSIG_KEY_SYNTAX naming the path', async () => {
    const path = join(dir, 'junk.key');
    writeFileSync(path, 'hello\n');
    await assert.rejects(readTsigKeyFile(path), {
      code: 'TSIG_KEY_SYNTAX',
      message: new RegExp(`^${path}: `),
    });
  });
});
