// Reports by mail (src/server/mail.ts): the SMTP receiver on loopback, spoken to with a small SMTP client,
// DKIM (RFC 6376) checked as RFC 8460 §3 wants it with keys generated here and published in the lab DNS
// server, reports stored in the real SQLite store.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { DnsClient } from '../../src/dns/client.js';
import { type MailIntake, startMailIntake, verifyReportDkim } from '../../src/server/mail.js';
import { probeSmtp } from '../../src/smtp/probe.js';
import type { Store } from '../../src/store/types.js';
import {
  type DkimKey,
  dkimKey,
  gzippedReport,
  NOW,
  reportEmail,
  sendMail,
  signEmail,
  smtpConnect,
  type TestContext,
  testContext,
} from '../fixtures/intake/helpers.js';
import { standardChain, TestPki } from '../helpers/pki.js';
import { type LabDnsServer, startDnsServer } from '../lab/dns-server.js';

let dns: LabDnsServer;
let resolver: DnsClient;
let sender: DkimKey;
let subdomainSigner: DkimKey;
let stranger: DkimKey;
let unpublished: DkimKey;
let broken: DkimKey;

before(async () => {
  sender = dkimKey('sender.example');
  subdomainSigner = dkimKey('mail.sender.example', 's2026');
  stranger = dkimKey('stranger.example');
  unpublished = dkimKey('sender.example', 'gone');
  broken = dkimKey('broken.example');
  dns = await startDnsServer([
    { origin: 'sender.example', records: [sender.record, subdomainSigner.record] },
    { origin: 'stranger.example', records: [stranger.record] },
    { origin: 'broken.example', servfail: true, records: [broken.record] },
  ]);
  resolver = new DnsClient({ servers: [{ host: dns.host, port: dns.port }], timeoutMs: 500, tries: 1 });
});
after(async () => dns.stop());

/** A report email with `id` as report-id, signed with `key` (if any). */
async function signedReport(id: string, key?: DkimKey, options: { from?: string; submitter?: string } = {}) {
  const message = reportEmail({ reports: [gzippedReport({ 'report-id': id })], messageId: id, ...options });
  return key ? signEmail(message, key) : message;
}

describe('verifyReportDkim (RFC 8460 §3)', () => {
  const cases: Array<[string, () => Promise<string>, string, RegExp]> = [
    [
      'a valid signature of the reporting domain',
      () => signedReport('v1', sender),
      'pass',
      /d=sender\.example.*pass/,
    ],
    [
      'a signature of a subdomain of the reporting domain',
      () => signedReport('v2', subdomainSigner),
      'pass',
      /d=mail\.sender\.example/,
    ],
    ['no signature', () => signedReport('v3'), 'none', /no DKIM signature/],
    [
      'a body changed after signing',
      async () => (await signedReport('v4', sender)).replace('aggregate TLS report', 'aggregate TLS rep0rt'),
      'fail',
      /body hash did not verify/,
    ],
    [
      'a header changed after signing',
      async () => (await signedReport('v5', sender)).replace('From: noreply-tlsrpt@', 'From: attacker@'),
      'fail',
      /d=sender\.example.*fail/,
    ],
    ['the l= tag', async () => signEmail(reportEmail({ messageId: 'v6' }), sender, 40), 'fail', /l= tag/],
    [
      'a valid signature of another domain',
      () => signedReport('v7', stranger),
      'fail',
      /d=stranger\.example.*not the reporting domain \(sender\.example\)/,
    ],
    ['a key that is not published', () => signedReport('v8', unpublished), 'fail', /no key/],
    [
      'a DNS failure while fetching the key',
      () => signedReport('v9', broken, { from: 'r@broken.example', submitter: 'broken.example' }),
      'temperror',
      /broken\.example/,
    ],
  ];
  for (const [name, make, verdict, reason] of cases) {
    it(`${verdict}: ${name}`, async () => {
      const result = await verifyReportDkim(Buffer.from(await make()), resolver, NOW);
      assert.equal(result.verdict, verdict, result.reason);
      assert.match(result.reason, reason);
    });
  }

  it('aligns with the From domain when TLS-Report-Submitter names another one', async () => {
    const message = await signedReport('v10', sender, { submitter: 'reports.example' });
    const result = await verifyReportDkim(Buffer.from(message), resolver, NOW);
    assert.equal(result.verdict, 'pass', result.reason);
  });

  it('only ever asks the lab DNS server', async () => {
    const before = dns.queries.length;
    await verifyReportDkim(Buffer.from(await signedReport('v11', sender)), resolver, NOW);
    assert.ok(
      dns.queries
        .slice(before)
        .some((q) => q.name === 'tlsrpt._domainkey.sender.example' && q.type === 'TXT'),
    );
  });
});

describe('the SMTP receiver', () => {
  let ctx: TestContext;
  let smtp: MailIntake;

  before(async () => {
    ctx = await testContext({ resolver, config: { smtp: { host: '127.0.0.1', port: 0 } } });
    smtp = await startMailIntake(ctx);
  });
  after(async () => {
    await smtp.stop();
    await ctx.close();
  });

  async function rejectedFor(predicate: (reason: string) => boolean) {
    return (await ctx.store.listRejected({ limit: 1000 })).items.filter(
      (r) => r.source === 'smtp' && predicate(r.reason),
    );
  }

  it('greets, offers SIZE, and neither STARTTLS without a certificate nor AUTH', async () => {
    const client = await smtpConnect(smtp.port);
    try {
      assert.equal(client.greeting.code, 220);
      const ehlo = await client.command('EHLO sender.example');
      assert.equal(ehlo.code, 250);
      assert.match(ehlo.text, new RegExp(`SIZE ${ctx.config.intake.maxBytes}`));
      assert.doesNotMatch(ehlo.text, /STARTTLS|AUTH/);
    } finally {
      client.close();
    }
  });

  it('stores a signed report with dkim "pass" and answers 250 after it is committed', async () => {
    const reply = await sendMail(smtp.port, await signedReport('smtp-1', sender));
    assert.equal(reply.code, 250, reply.text);
    assert.match(reply.text, /1 report\(s\) stored, 1 new/);
    const [summary] = (await ctx.store.listReports({ limit: 1000 })).items.filter(
      (r) => r.reportId === 'smtp-1',
    );
    assert.equal(summary?.source, 'smtp');
    assert.equal(summary?.dkim, 'pass');
    const saved = await ctx.store.getReport(summary!.id);
    assert.equal(saved?.submitter, 'noreply-tlsrpt@sender.example (DKIM d=sender.example)');
  });

  it('stores the same report delivered twice once', async () => {
    const message = await signedReport('smtp-dup', sender);
    assert.equal((await sendMail(smtp.port, message)).code, 250);
    const again = await sendMail(smtp.port, message);
    assert.equal(again.code, 250);
    assert.match(again.text, /1 report\(s\) stored, 0 new/);
    const stored = (await ctx.store.listReports({ limit: 1000 })).items.filter(
      (r) => r.reportId === 'smtp-dup',
    );
    assert.equal(stored.length, 1);
  });

  const refused: Array<[string, string, () => Promise<string>, RegExp]> = [
    ['unsigned', 'smtp-unsigned', () => signedReport('smtp-unsigned'), /no DKIM signature/],
    [
      'tampered',
      'smtp-tampered',
      async () =>
        (await signedReport('smtp-tampered', sender)).replace('aggregate TLS report', 'forged TLS report'),
      /body hash did not verify/,
    ],
    [
      'l= signed',
      'smtp-l',
      () => signEmail(reportEmail({ reports: [gzippedReport({ 'report-id': 'smtp-l' })] }), sender, 40),
      /l= tag/,
    ],
    [
      'stranger-signed',
      'smtp-stranger',
      () => signedReport('smtp-stranger', stranger),
      /not the reporting domain/,
    ],
  ];
  for (const [name, reportId, make, reason] of refused) {
    it(`keeps a ${name} report in the rejected list (250 once recorded), not in the reports`, async () => {
      const message = await make();
      const reply = await sendMail(smtp.port, message);
      assert.equal(reply.code, 250, reply.text);
      assert.match(reply.text, /rejected list: DKIM_(NONE|FAIL)/);
      const rows = await rejectedFor((r) => reason.test(r));
      assert.equal(rows.length, 1);
      assert.match(rows[0]!.reason, /RFC 8460 §3/);
      assert.equal(rows[0]!.submitter, 'noreply-tlsrpt@sender.example');
      assert.equal(rows[0]!.size, Buffer.byteLength(message.replace(/\r?\n/g, '\r\n')));
      const stored = (await ctx.store.listReports({ limit: 1000 })).items;
      assert.ok(!stored.some((r) => r.reportId === reportId));
    });
  }

  it('keeps a signed but malformed report in the rejected list with the decoder’s reason', async () => {
    const broken = reportEmail({ reports: [Buffer.from('{"organization-name": ')], messageId: 'smtp-bad' });
    const reply = await sendMail(smtp.port, await signEmail(broken, sender));
    assert.equal(reply.code, 250);
    assert.match(reply.text, /TLSRPT_/);
    assert.equal((await rejectedFor((r) => /attachment 1/.test(r))).length, 1);
  });

  it('answers 451 and writes nothing when the DKIM key lookup fails', async () => {
    const before = (await ctx.store.listRejected({ limit: 1000 })).items.length;
    const message = await signedReport('smtp-dns', broken, {
      from: 'r@broken.example',
      submitter: 'broken.example',
    });
    const reply = await sendMail(smtp.port, message);
    assert.equal(reply.code, 451, reply.text);
    assert.equal((await ctx.store.listRejected({ limit: 1000 })).items.length, before);
    assert.ok(!(await ctx.store.listReports({ limit: 1000 })).items.some((r) => r.reportId === 'smtp-dns'));
  });

  it('refuses an oversized message with 552 and records it', async () => {
    const big = reportEmail({
      reports: [Buffer.alloc(ctx.config.intake.maxBytes, 0x41)],
      messageId: 'smtp-big',
    });
    const reply = await sendMail(smtp.port, big);
    assert.equal(reply.code, 552, reply.text);
    assert.equal((await rejectedFor((r) => /more than the limit/.test(r))).length, 1);
  });

  it('refuses MAIL FROM with a SIZE over the limit', async () => {
    const client = await smtpConnect(smtp.port);
    try {
      await client.command('EHLO sender.example');
      const reply = await client.command(
        `MAIL FROM:<a@sender.example> SIZE=${ctx.config.intake.maxBytes + 1}`,
      );
      assert.equal(reply.code, 552);
    } finally {
      client.close();
    }
  });
});

describe('the SMTP receiver with acceptUnsigned', () => {
  it('stores unsigned and failing reports with dkim "none" / "fail"', async () => {
    const ctx = await testContext({
      resolver,
      intake: { acceptUnsigned: true },
      config: { smtp: { host: '127.0.0.1', port: 0 } },
    });
    const smtp = await startMailIntake(ctx);
    try {
      assert.equal((await sendMail(smtp.port, await signedReport('au-none'))).code, 250);
      const tampered = (await signedReport('au-fail', sender)).replace('aggregate TLS report', 'changed');
      assert.equal((await sendMail(smtp.port, tampered)).code, 250);
      const stored = (await ctx.store.listReports({ limit: 100 })).items;
      assert.equal(stored.find((r) => r.reportId === 'au-none')?.dkim, 'none');
      assert.equal(stored.find((r) => r.reportId === 'au-fail')?.dkim, 'fail');
      assert.equal((await ctx.store.listRejected({ limit: 100 })).items.length, 0);
    } finally {
      await smtp.stop();
      await ctx.close();
    }
  });
});

describe('the SMTP receiver when the store fails', () => {
  it('answers 451 (the sender retries) and acknowledges nothing', async () => {
    const ctx = await testContext({ resolver, config: { smtp: { host: '127.0.0.1', port: 0 } } });
    const real = ctx.store;
    ctx.store = new Proxy(real, {
      get(target, key, receiver) {
        if (key === 'saveReport') {
          return async (..._args: Parameters<Store['saveReport']>) => {
            throw new Error('SQLITE_FULL: database or disk is full');
          };
        }
        const value = Reflect.get(target, key, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const smtp = await startMailIntake(ctx);
    try {
      const reply = await sendMail(smtp.port, await signedReport('fail-1', sender));
      assert.equal(reply.code, 451, reply.text);
      assert.doesNotMatch(reply.text, /SQLITE/);
    } finally {
      await smtp.stop();
      ctx.store = real;
      await ctx.close();
    }
  });
});

describe('the SMTP receiver with a certificate', () => {
  it('offers STARTTLS with the given chain', async () => {
    const pki = TestPki.create();
    const chain = standardChain(pki, { host: 'reports.example.com' });
    const ctx = await testContext({ resolver, config: { smtp: { host: '127.0.0.1', port: 0 } } });
    const smtp = await startMailIntake(ctx, {
      tls: {
        key: readFileSync(chain.leaf.key.path),
        cert: chain.leaf.pem + chain.intermediate.pem,
      },
    });
    try {
      const probe = await probeSmtp({
        address: '127.0.0.1',
        port: smtp.port,
        mxHost: 'reports.example.com',
        ca: [chain.root.pem],
        timeoutMs: 5000,
      });
      assert.ok(probe.ok, JSON.stringify(probe));
      assert.equal(probe.pkix.valid, true);
      assert.equal(probe.pkix.nameMatches, true);
    } finally {
      await smtp.stop();
      await ctx.close();
      pki.remove();
    }
  });
});
