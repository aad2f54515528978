// serve's `dnsUpdate` settings (src/server/config.ts) and the choice of publisher (src/server/publish-id.ts):
// key files read at start, relative to the config file; a bad or unreadable key is a config error naming
// the key file and the domain; the TSIG secret never appears in the settings as logged.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, describeSettings, loadServeSettings } from '../../src/server/config.js';
import { publisherFor, stsIdRecord } from '../../src/server/publish-id.js';

const dir = mkdtempSync(join(tmpdir(), 'mxguard-publish-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = Buffer.alloc(32, 7).toString('base64');
writeFileSync(join(dir, 'good.key'), `key "upd" {\n\talgorithm hmac-sha256;\n\tsecret "${SECRET}";\n};\n`);
writeFileSync(join(dir, 'broken.key'), 'this is not a key\n');

function load(dnsUpdate: unknown) {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ dnsUpdate }));
  return loadServeSettings({ cli: { config: file }, env: {}, cwd: '/' });
}

function problemsOf(dnsUpdate: unknown): string {
  try {
    load(dnsUpdate);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

describe('dnsUpdate settings', () => {
  it('reads the key file relative to the config file, the server with port 53 by default, TTL 300', () => {
    const settings = load({
      domains: { 'Example.COM.': { server: '192.0.2.53', tsigKey: 'good.key' } },
      default: { server: '[2001:db8::53]:5353', tsigKey: 'good.key', zone: 'example.net', ttl: 60 },
    });
    const own = publisherFor(settings.dnsUpdate, 'example.com');
    assert.deepEqual(own?.server, { host: '192.0.2.53', port: 53 });
    assert.equal(own?.key.name, 'upd');
    assert.equal(own?.key.secret.toString('base64'), SECRET);
    assert.equal(own?.ttl, 300);
    const other = publisherFor(settings.dnsUpdate, 'mail.example.net');
    assert.deepEqual(other?.server, { host: '2001:db8::53', port: 5353 });
    assert.equal(other?.zone, 'example.net');
    assert.equal(other?.ttl, 60);
  });

  it('without dnsUpdate no domain has a publisher', () => {
    assert.equal(publisherFor(load(undefined).dnsUpdate, 'example.com'), undefined);
    assert.equal(publisherFor(load({ domains: {} }).dnsUpdate, 'example.com'), undefined);
  });

  it('a broken key file is a config error naming the domain and the file', () => {
    const text = problemsOf({ domains: { 'example.com': { server: '192.0.2.53', tsigKey: 'broken.key' } } });
    assert.match(text, /dnsUpdate\.domains\.example\.com\.tsigKey: .*broken\.key: no TSIG key found/);
  });

  it('an unreadable key file is a config error naming the default and the file', () => {
    const text = problemsOf({ default: { server: '192.0.2.53', tsigKey: 'missing.key' } });
    assert.match(text, /dnsUpdate\.default\.tsigKey: .*missing\.key/);
  });

  it('a bad server, a bad domain name and an unknown key are refused', () => {
    assert.match(
      problemsOf({ default: { server: 'ns1 example', tsigKey: 'good.key' } }),
      /dnsUpdate\.default\.server/,
    );
    assert.match(
      problemsOf({ domains: { 'not a name': { server: '192.0.2.53', tsigKey: 'good.key' } } }),
      /expected a domain name/,
    );
    assert.match(
      problemsOf({ default: { server: '192.0.2.53', tsigKey: 'good.key', secret: 'x' } }),
      /secret/,
    );
  });

  it('the settings as logged name the key but not its secret', () => {
    const settings = load({ domains: { 'example.com': { server: '192.0.2.53', tsigKey: 'good.key' } } });
    const shown = JSON.stringify(describeSettings(settings));
    assert.match(shown, /upd \(hmac-sha256\)/);
    assert.equal(shown.includes(SECRET), false);
    // A Buffer would show as {"type":"Buffer","data":[7,7,...]}.
    assert.equal(shown.includes('7,7,7'), false);
  });

  it('the record published is the _mta-sts TXT of RFC 8461 §3.1', () => {
    assert.deepEqual(stsIdRecord('Example.COM.', '20261207100000'), {
      name: '_mta-sts.example.com',
      value: 'v=STSv1; id=20261207100000',
    });
  });
});
