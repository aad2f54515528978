// Alert e-mail: the subject and plain-text body (alertMail), and sendAlertMail against a real SMTP
// submission server on loopback (smtp-server) with STARTTLS and implicit TLS from the test PKI, AUTH
// only after TLS, a server that hides STARTTLS (no downgrade: nothing is sent), a wrong password and
// an untrusted certificate.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { simpleParser } from 'mailparser';
import { alertMail, sendAlertMail } from '../../../src/monitor/notify/email.js';
import type { EmailTarget } from '../../../src/monitor/settings.js';
import type { AlertEvent } from '../../../src/store/monitor-types.js';
import { TestPki } from '../../helpers/pki.js';
import { type ServerTls, serverTls } from '../../helpers/server-tls.js';
import { SUBMISSION_PASSWORD, SUBMISSION_USER, startSubmissionServer } from '../../helpers/submission.js';

const FIX =
  '_25._tcp.mx1.example.com. IN TLSA 3 1 1 8c2f0c4b0e0b5a9b1c3d4e5f60718293a4b5c6d7e8f901234567890abcdef012';
const OPENED: AlertEvent = {
  event: 'alert.opened',
  domain: 'example.com',
  code: 'DANE_TLSA_MISMATCH',
  severity: 'fail',
  message: 'No TLSA record of _25._tcp.mx1.example.com matches the certificate mx1.example.com presents.',
  host: 'mx1.example.com',
  fix: FIX,
  openedAt: '2026-12-07T10:00:00.000Z',
  dashboardUrl: 'https://mxguard.example.net/#/domains/example.com',
};
const RESOLVED: AlertEvent = { ...OPENED, event: 'alert.resolved', resolvedAt: '2026-12-07T11:00:00.000Z' };

describe('alertMail', () => {
  it('names the change, severity, code and domain in the subject', () => {
    assert.equal(alertMail(OPENED).subject, '[mxguard] OPEN fail DANE_TLSA_MISMATCH example.com');
    assert.equal(alertMail(RESOLVED).subject, '[mxguard] RESOLVED fail DANE_TLSA_MISMATCH example.com');
  });

  it('says what is wrong, where, the fix and the dashboard link in the body', () => {
    const { text } = alertMail(OPENED);
    for (const part of [
      OPENED.message,
      'Host:     mx1.example.com',
      FIX,
      `Dashboard: ${OPENED.dashboardUrl}`,
    ]) {
      assert.ok(text.includes(part), `body lacks ${part}:\n${text}`);
    }
  });

  it('gives no fix once resolved, and says when it resolved', () => {
    const { text } = alertMail(RESOLVED);
    assert.ok(!text.includes(FIX));
    assert.ok(text.includes('Resolved: 2026-12-07T11:00:00.000Z'));
  });

  it('keeps line breaks out of the subject and escape sequences out of the body', () => {
    const hostile = alertMail({
      ...OPENED,
      code: 'X\r\nBcc: victim@example.org',
      message: 'subject CN=\x1b[2J\x1b]0;owned\x07 evil\u202e',
      fix: 'line one\nline two\x00',
    });
    assert.doesNotMatch(hostile.subject, /[\r\n]/);
    assert.doesNotMatch(hostile.text, /[\x00-\x08\x0b-\x1f\x7f\u202e]/);
    assert.ok(hostile.text.includes('line one\nline two\\x00'));
  });
});

describe('sendAlertMail', () => {
  let pki: TestPki;
  let tlsFiles: ServerTls;
  before(() => {
    pki = TestPki.create();
    tlsFiles = serverTls(pki);
  });
  after(() => pki.remove());

  function target(port: number, overrides: Partial<EmailTarget> = {}): EmailTarget {
    return {
      host: 'localhost',
      port,
      security: 'starttls',
      user: SUBMISSION_USER,
      password: SUBMISSION_PASSWORD,
      from: 'mxguard@example.net',
      to: ['postmaster@example.com', 'ops@example.com'],
      ...overrides,
    };
  }

  it('submits a plain-text mail over STARTTLS, authenticating only after TLS, with the fix in the body', async (t) => {
    const server = await startSubmissionServer(tlsFiles);
    t.after(() => server.close());
    const to = ['postmaster@example.com', 'ops@example.com'];
    const result = await sendAlertMail(
      target(server.port),
      to,
      { id: 7, event: OPENED },
      { ca: [tlsFiles.ca] },
    );
    assert.deepEqual(result, { ok: true });
    assert.deepEqual(server.auths, [{ user: SUBMISSION_USER, secure: true }]);
    assert.equal(server.messages.length, 1);
    const message = server.messages[0]!;
    assert.equal(message.secure, true);
    assert.equal(message.from, 'mxguard@example.net');
    assert.deepEqual(message.to, to);
    const parsed = await simpleParser(message.raw);
    assert.equal(parsed.subject, '[mxguard] OPEN fail DANE_TLSA_MISMATCH example.com');
    assert.equal(parsed.html, false);
    assert.equal(parsed.attachments.length, 0);
    assert.ok(parsed.text?.includes(FIX), parsed.text);
    assert.ok(parsed.text?.includes(OPENED.dashboardUrl!), parsed.text);
    assert.equal(parsed.headers.get('auto-submitted'), 'auto-generated');
    assert.match(message.raw, /^Content-Type: text\/plain/im);
  });

  it('submits over implicit TLS', async (t) => {
    const server = await startSubmissionServer(tlsFiles, { secure: true });
    t.after(() => server.close());
    const result = await sendAlertMail(
      target(server.port, { security: 'tls' }),
      ['postmaster@example.com'],
      { id: 8, event: RESOLVED },
      { ca: [tlsFiles.ca] },
    );
    assert.deepEqual(result, { ok: true });
    assert.equal(server.messages[0]?.secure, true);
  });

  it('sends nothing, not even the password, to a server that does not offer STARTTLS', async (t) => {
    const server = await startSubmissionServer(tlsFiles, {
      hideSTARTTLS: true,
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
    });
    t.after(() => server.close());
    const result = await sendAlertMail(
      target(server.port),
      ['postmaster@example.com'],
      { id: 9, event: OPENED },
      {
        ca: [tlsFiles.ca],
      },
    );
    assert.equal(result.ok, false);
    assert.deepEqual(server.auths, []);
    assert.deepEqual(server.messages, []);
  });

  it('fails on a certificate it does not trust', async (t) => {
    const server = await startSubmissionServer(tlsFiles);
    t.after(() => server.close());
    const result = await sendAlertMail(target(server.port), ['postmaster@example.com'], {
      id: 10,
      event: OPENED,
    });
    assert.equal(result.ok, false);
    assert.match((result as { error: string }).error, /certificate/);
    assert.deepEqual(server.messages, []);
  });

  it('fails with the server reply on a wrong password', async (t) => {
    const server = await startSubmissionServer(tlsFiles);
    t.after(() => server.close());
    const result = await sendAlertMail(
      target(server.port, { password: 'wrong' }),
      ['postmaster@example.com'],
      { id: 11, event: OPENED },
      { ca: [tlsFiles.ca] },
    );
    assert.equal(result.ok, false);
    assert.match((result as { error: string }).error, /535/);
    assert.deepEqual(server.messages, []);
  });
});
