// DMARC aggregate reports through the mail intake (issue 15): the SMTP receiver (src/server/mail.ts) and
// IMAP polling (src/server/imap.ts, a real Dovecot: test/lab/imap.ts) receiving one mailbox with BOTH
// kinds, signed by the reporting domain (keys in the lab DNS server). Reports come from the shared
// corpus (test/fixtures/corpus/, copied from ../shared/corpus/dmarc) as reporters attach them: zip, gzip, plain XML. Each is stored once
// (organization + report id + domain), with its source and DKIM verdict; junk is rejected with a code.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { DnsClient } from '../../src/dns/client.js';
import type { ServeConfig } from '../../src/server/context.js';
import { pollOnce } from '../../src/server/imap.js';
import { type MailIntake, startMailIntake } from '../../src/server/mail.js';
import {
  type DkimKey,
  dkimKey,
  gzippedReport,
  reportEmail,
  sendMail,
  signEmail,
  type TestContext,
  testContext,
} from '../fixtures/intake/helpers.js';
import { CORPUS_DIR } from '../helpers/corpus.js';
import { type LabDnsServer, startDnsServer } from '../lab/dns-server.js';
import { type LabImapServer, startImapServer, withImapClient } from '../lab/imap.js';

const CORPUS = `${CORPUS_DIR}dmarc/`;

/** Corpus reports with what their XML says (read by hand): organization, report id, policy domain, messages. */
const ZIP = {
  file: 'google.com!borschow.com!1549929600!1550015999.zip',
  type: 'application/zip',
  organization: 'google.com',
  reportId: '949348866075514174',
  domain: 'borschow.com',
  messages: 1,
};
const GZ = {
  file: 'fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz',
  type: 'application/gzip',
  organization: 'FastMail Pty Ltd',
  reportId: '102675056',
  domain: 'indemed.com',
  messages: 1,
};
const XML = {
  file: 'zoho.com!example.com!1581753600!1581840000.xml',
  type: 'text/xml',
  organization: 'zoho.com',
  reportId: 'e2cb5d97-dcbb-470f-b2dd-45519a2abbb3',
  domain: 'example.com',
  messages: 9,
};

/** A DMARC report e-mail as reporters send it: multipart/mixed, the report as its one attachment. */
function dmarcEmail(attachment: Buffer, type: string, name: string, messageId: string): string {
  const boundary = 'mxguard-dmarc-boundary';
  return [
    'From: noreply-dmarc-support@sender.example',
    'To: dmarc@example.com',
    'Date: Mon, 02 Mar 2026 09:00:00 +0000',
    `Message-ID: <${messageId}@sender.example>`,
    `Subject: Report domain: example.com Submitter: sender.example Report-ID: ${messageId}`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    'This is an aggregate report from sender.example.',
    `--${boundary}`,
    `Content-Type: ${type}; name="${name}"`,
    `Content-Disposition: attachment; filename="${name}"`,
    'Content-Transfer-Encoding: base64',
    '',
    ...(attachment.toString('base64').match(/.{1,76}/g) ?? []),
    `--${boundary}--`,
    '',
  ].join('\r\n');
}

function corpusEmail(report: typeof ZIP, messageId: string): string {
  return dmarcEmail(readFileSync(CORPUS + report.file), report.type, report.file, messageId);
}

let dns: LabDnsServer;
let resolver: DnsClient;
let sender: DkimKey;

before(async () => {
  sender = dkimKey('sender.example');
  dns = await startDnsServer([{ origin: 'sender.example', records: [sender.record] }]);
  resolver = new DnsClient({ servers: [{ host: dns.host, port: dns.port }], timeoutMs: 500, tries: 1 });
});
after(async () => dns?.stop());

async function metricValue(ctx: TestContext, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await ctx.metrics.getMetricsAsJSON()).find((m) => m.name === name);
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value ?? 0;
}

describe('SMTP receiver: DMARC and TLS-RPT reports to one address', () => {
  let ctx: TestContext;
  let smtp: MailIntake;

  before(async () => {
    ctx = await testContext({ resolver, config: { smtp: { host: '127.0.0.1', port: 0 } } });
    smtp = await startMailIntake(ctx);
  });
  after(async () => {
    await smtp?.stop();
    await ctx?.close();
  });

  it('stores each kind in its list, a repeat once, and rejects a report that is not XML with its code', async () => {
    const send = async (message: string) =>
      sendMail(smtp.port, await signEmail(message, sender), 'dmarc@example.com');
    for (const [report, id] of [
      [ZIP, 'smtp-zip'],
      [GZ, 'smtp-gz'],
      [XML, 'smtp-xml'],
      [GZ, 'smtp-gz-again'],
    ] as const) {
      const reply = await send(corpusEmail(report, id));
      assert.equal(reply.code, 250, reply.text);
    }
    const tlsrpt = await send(reportEmail({ reports: [gzippedReport({ 'report-id': 'smtp-tlsrpt' })] }));
    assert.equal(tlsrpt.code, 250, tlsrpt.text);
    const junk = await send(
      dmarcEmail(Buffer.from('<feedback><report_metadata>'), 'text/xml', 'x.xml', 'junk'),
    );
    assert.equal(junk.code, 250, junk.text);
    assert.match(junk.text, /kept in the rejected list: DMARC_/);

    const dmarc = await ctx.store.listDmarcReports({ limit: 100 });
    assert.equal(dmarc.total, 3);
    for (const report of [ZIP, GZ, XML]) {
      const found = dmarc.items.find((r) => r.reportId === report.reportId);
      assert.ok(found, report.file);
      assert.deepEqual(
        [found.organization, found.domain, found.messages, found.source],
        [report.organization, report.domain, report.messages, 'smtp'],
      );
      const stored = await ctx.store.getDmarcReport(found.id);
      assert.match(
        stored?.submitter ?? '',
        /noreply-dmarc-support@sender\.example \(DKIM d=sender\.example\)/,
      );
    }
    const tls = await ctx.store.listReports({ limit: 100 });
    assert.deepEqual(
      tls.items.map((r) => r.reportId),
      ['smtp-tlsrpt'],
    );
    const rejected = (await ctx.store.listRejected({ limit: 100 })).items;
    assert.equal(rejected.length, 1);
    assert.equal(rejected[0]?.source, 'smtp');

    const received = 'mxguard_dmarc_reports_received_total';
    assert.equal(await metricValue(ctx, received, { source: 'smtp', outcome: 'created' }), 3);
    assert.equal(await metricValue(ctx, received, { source: 'smtp', outcome: 'duplicate' }), 1);
    assert.equal(
      await metricValue(ctx, 'mxguard_reports_received_total', { source: 'smtp', outcome: 'created' }),
      1,
    );
  });

  it('refuses an unsigned DMARC report like an unsigned TLS-RPT one', async () => {
    const reply = await sendMail(smtp.port, corpusEmail(XML, 'unsigned'), 'dmarc@example.com');
    assert.equal(reply.code, 250, reply.text);
    assert.match(reply.text, /DKIM_NONE/);
    assert.equal((await ctx.store.listDmarcReports()).total, 3);
  });
});

describe('IMAP poller: a mailbox with both kinds', () => {
  let imap: LabImapServer;
  let ctx: TestContext;

  before(async () => {
    imap = await startImapServer({ host: '127.0.0.1' });
    const config: NonNullable<ServeConfig['imap']> = {
      host: imap.host,
      port: imap.port,
      secure: false,
      user: imap.user,
      password: imap.password,
      mailbox: 'Reports',
      processedMailbox: 'Reports-done',
      intervalSeconds: 3600,
    };
    ctx = await testContext({ resolver, config: { imap: config } });
  });
  after(async () => {
    await ctx?.close();
    await imap?.stop();
  });

  it('stores the DMARC and TLS-RPT reports of one mailbox, each once, and moves every message', async () => {
    const messages = [
      corpusEmail(ZIP, 'imap-zip'),
      corpusEmail(XML, 'imap-xml'),
      corpusEmail(XML, 'imap-xml-copy'),
      reportEmail({ reports: [gzippedReport({ 'report-id': 'imap-tlsrpt' })], messageId: 'imap-tlsrpt' }),
    ];
    await withImapClient(imap, async (client) => {
      await client.mailboxCreate('Reports');
      for (const message of messages) await client.append('Reports', await signEmail(message, sender));
    });
    const summary = await pollOnce(ctx);
    assert.deepEqual(summary, { messages: 4, stored: 4, rejected: 0, left: 0 });

    const dmarc = (await ctx.store.listDmarcReports({ limit: 100 })).items;
    assert.deepEqual(
      dmarc.map((r) => [r.reportId, r.source]).sort(),
      [
        [XML.reportId, 'imap'],
        [ZIP.reportId, 'imap'],
      ].sort(),
    );
    const stored = await ctx.store.getDmarcReport(dmarc[0]!.id);
    assert.equal(stored?.report.kind, 'dmarc');
    assert.deepEqual(
      (await ctx.store.listReports({ limit: 100 })).items.map((r) => r.reportId),
      ['imap-tlsrpt'],
    );
    const left = await withImapClient(imap, async (client) => {
      const status = await client.status('Reports', { messages: true });
      const done = await client.status('Reports-done', { messages: true });
      return [status === false ? -1 : status.messages, done === false ? -1 : done.messages];
    });
    assert.deepEqual(left, [0, 4]);
  });
});
