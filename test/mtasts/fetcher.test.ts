// Who fetches the policy: User-Agent classification (src/mtasts/fetcher.ts).
// Sources of the User-Agent strings: Google's MTA-STS fetcher names itself Google-SMTP-STS (also
// listed in public bot lists); postfix-mta-sts-resolver's is in its Debian package (defaults.py,
// USER_AGENT = "postfix-mta-sts-resolver"); mailauth's in node_modules/mailauth/lib/tools.js; ours in
// src/fetch/policy.ts. Microsoft's and Yahoo's fetchers are not documented: those rows test the
// company-name rule with strings in the usual User-Agent shapes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { USER_AGENT } from '../../src/fetch/policy.js';
import { classifyUserAgent, FETCHER_LABELS, type FetcherLabel } from '../../src/mtasts/fetcher.js';

const TABLE: Array<[string | undefined, FetcherLabel]> = [
  ['Google-SMTP-STS', 'Google'],
  ['google-smtp-sts', 'Google'],
  ['Mozilla/5.0 (compatible; Google-SMTP-STS)', 'Google'],
  ['Microsoft Exchange Online MTA-STS', 'Microsoft'],
  ['Mozilla/5.0 (compatible; Microsoft-SMTP-STS/1.0)', 'Microsoft'],
  ['Exchange/15.20 MTA-STS fetcher', 'Microsoft'],
  ['Outlook.com SMTP STS', 'Microsoft'],
  ['Yahoo-SMTP-STS', 'Yahoo'],
  ['Mozilla/5.0 (compatible; YahooMailProxy)', 'Yahoo'],
  ['postfix-mta-sts-resolver', 'postfix-mta-sts-resolver'],
  ['mailauth/4.13.3 (+https://github.com/postalsys/mailauth', 'mailauth'],
  [USER_AGENT, 'mxguard'],
  ['curl/7.88.1', 'command-line'],
  ['Wget/1.21.3', 'command-line'],
  ['python-requests/2.31.0', 'command-line'],
  ['Go-http-client/1.1', 'command-line'],
  ['Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0', 'browser'],
  ['SomeMTA/2.0', 'other'],
  ['my curl/7 wrapper', 'other'],
  ['', 'none'],
  ['   ', 'none'],
  [undefined, 'none'],
];

describe('classifyUserAgent', () => {
  for (const [ua, label] of TABLE) {
    it(`${JSON.stringify(ua)} -> ${label}`, () => {
      assert.equal(classifyUserAgent(ua), label);
    });
  }

  it('only ever returns a known label, for any string', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (ua) => {
        assert.ok(FETCHER_LABELS.includes(classifyUserAgent(ua)));
      }),
    );
  });
});
