// Access-log lines (src/accesslog/parse.ts): IIS W3C extended with and without #Fields, nginx/Apache combined,
// Apache vhost_combined, and hostile lines (never an exception, always a named problem).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MAX_LINE_CHARS, newParserState, parseAccessLine } from '../../src/accesslog/parse.js';

describe('parseAccessLine', () => {
  it('reads the IIS line admins quote, with the default fields', () => {
    const r = parseAccessLine(
      '2023-07-11 08:29:59 172.16.1.4 GET /.well-known/mta-sts.txt - 443 - 74.125.217.68 Google-SMTP-STS - 200 0 0 119',
      newParserState(),
    );
    assert.deepEqual(r, {
      kind: 'entry',
      entry: {
        at: '2023-07-11T08:29:59.000Z',
        method: 'GET',
        path: '/.well-known/mta-sts.txt',
        status: 200,
        userAgent: 'Google-SMTP-STS',
        clientIp: '74.125.217.68',
      },
    });
  });

  it('follows a #Fields directive (cs-host, "+" for spaces in the User-Agent)', () => {
    const state = newParserState();
    assert.deepEqual(
      parseAccessLine(
        '#Fields: date time cs-method cs-uri-stem cs-host sc-status cs(User-Agent) c-ip',
        state,
      ),
      {
        kind: 'skip',
      },
    );
    const r = parseAccessLine(
      '2024-01-02 03:04:05 GET /.well-known/mta-sts.txt?x=1 MTA-STS.Example.com:443 301 Mozilla/5.0+(compatible;+Microsoft) 40.1.2.3',
      state,
    );
    assert.equal(r.kind, 'entry');
    if (r.kind !== 'entry') return;
    assert.equal(r.entry.path, '/.well-known/mta-sts.txt');
    assert.equal(r.entry.host, 'mta-sts.example.com');
    assert.equal(r.entry.userAgent, 'Mozilla/5.0 (compatible; Microsoft)');
    assert.equal(r.entry.status, 301);
  });

  it('reads nginx/Apache combined, with the time zone applied, and vhost_combined', () => {
    const combined = parseAccessLine(
      '203.0.113.9 - - [10/Oct/2023:13:55:36 -0700] "GET /.well-known/mta-sts.txt HTTP/1.1" 200 97 "-" "Google-SMTP-STS"',
      newParserState(),
    );
    assert.equal(combined.kind, 'entry');
    if (combined.kind === 'entry') {
      assert.equal(combined.entry.at, '2023-10-10T20:55:36.000Z');
      assert.equal(combined.entry.clientIp, '203.0.113.9');
      assert.equal(combined.entry.host, undefined);
    }
    const vhost = parseAccessLine(
      'mta-sts.example.org:443 2001:db8::1 - - [01/Feb/2024:00:00:00 +0000] "HEAD /.well-known/mta-sts.txt HTTP/2.0" 404 0 "-" "say \\"hi\\""',
      newParserState(),
    );
    assert.equal(vhost.kind, 'entry');
    if (vhost.kind === 'entry') {
      assert.equal(vhost.entry.host, 'mta-sts.example.org');
      assert.equal(vhost.entry.clientIp, '2001:db8::1');
      assert.equal(vhost.entry.userAgent, 'say "hi"');
      assert.equal(vhost.entry.method, 'HEAD');
    }
  });

  const bad: Array<[string, RegExp]> = [
    ['garbage', /values for 15 fields/],
    ['1.2.3.4 - - [99/Foo/2023:13:55:36 -0700] "GET / HTTP/1.1" 200 1 "-" "x"', /unreadable time/],
    ['1.2.3.4 - - [10/Oct/2023:13:55:36 -0700] "GETONLY" 200 1 "-" "x"', /request line/],
    ['2023-13-45 99:99:99 a GET /x - 443 - b ua - 200 0 0 1', /no date, time/],
    ['x'.repeat(MAX_LINE_CHARS + 1), /longer than/],
  ];
  for (const [line, why] of bad) {
    it(`names the problem: ${JSON.stringify(line.slice(0, 40))}`, () => {
      const r = parseAccessLine(line, newParserState());
      assert.equal(r.kind, 'malformed');
      if (r.kind === 'malformed') assert.match(r.reason, why);
    });
  }

  it('comments and blank lines are skipped', () => {
    for (const line of ['', '   ', '#Software: IIS', '\r'])
      assert.deepEqual(parseAccessLine(line, newParserState()), { kind: 'skip' });
  });

  it('never throws, whatever the line (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (line) => {
        const r = parseAccessLine(line, newParserState());
        assert.ok(['entry', 'skip', 'malformed'].includes(r.kind));
      }),
    );
  });
});
