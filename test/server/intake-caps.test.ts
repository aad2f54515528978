// The caps on report content (src/tlsrpt/report.ts REPORT_CAPS) hold on every intake channel, since
// they live in the decode step that ingestReport shares: the SMTP receiver (552 for a refusal for size,
// as for a message over maxBytes), IMAP polling (kept in the rejected list, message moved) and
// `mxguard reports import` (rejected list, exit status 1). HTTPS is in test/server/intake-https.test.ts.
// Real servers: the SMTP receiver, Dovecot (test/lab/imap.ts), the built command (given --database
// when the test store is PostgreSQL: test/helpers/test-store.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { DEFAULT_INTAKE } from '../../src/server/config.js';
import { pollOnce } from '../../src/server/imap.js';
import { type MailIntake, startMailIntake } from '../../src/server/mail.js';
import {
  gzippedReport,
  reportBytes,
  reportEmail,
  sendMail,
  type TestContext,
  testContext,
} from '../fixtures/intake/helpers.js';
import { manyRowsReport } from '../fixtures/intake/hostile.js';
import { runCli } from '../helpers/cli.js';
import { openTestStore, reopenTestStore, testStoreDatabaseArgs } from '../helpers/test-store.js';
import { type LabImapServer, startImapServer, withImapClient } from '../lab/imap.js';

// `serve`'s default limits; mail without DKIM accepted so that only the caps decide.
const INTAKE = { ...DEFAULT_INTAKE, acceptUnsigned: true, ratePerMinute: 1000 };
const OVER_CAP = { 'report-id': 'over-cap', 'organization-name': 'o'.repeat(257) };
const AT_CAP = { 'report-id': 'at-cap', 'organization-name': 'o'.repeat(256) };

function mailWith(report: Buffer, id: string): string {
  return reportEmail({ reports: [gzipSync(report)], messageId: id });
}

describe('the SMTP receiver', () => {
  let ctx: TestContext;
  let smtp: MailIntake;
  before(async () => {
    ctx = await testContext({ intake: INTAKE, config: { smtp: { host: '127.0.0.1', port: 0 } } });
    smtp = await startMailIntake(ctx);
  });
  after(async () => {
    await smtp.stop();
    await ctx.close();
  });

  it('552 for a report over a field cap, kept in the rejected list; 250 at the cap', async () => {
    const over = await sendMail(smtp.port, mailWith(reportBytes(OVER_CAP), 'smtp-over'));
    assert.equal(over.code, 552, over.text);
    assert.match(over.text, /TLSRPT_FIELD_TOO_LONG/);
    const rejected = (await ctx.store.listRejected({ limit: 100 })).items;
    assert.ok(rejected.some((r) => r.source === 'smtp' && /257 characters/.test(r.reason)));

    const atCap = await sendMail(smtp.port, mailWith(reportBytes(AT_CAP), 'smtp-at'));
    assert.equal(atCap.code, 250, atCap.text);
  });

  it('250 for 200,000 failure rows in a mailed report, stored merged with exact counts', async () => {
    const reply = await sendMail(smtp.port, mailWith(manyRowsReport(200_000, 'smtp-rows'), 'smtp-rows'));
    assert.equal(reply.code, 250, reply.text);
    const listed = (await ctx.store.listReports({ limit: 100 })).items.find(
      (r) => r.reportId === 'smtp-rows',
    );
    const saved = await ctx.store.getReport(listed!.id);
    assert.equal(saved!.report.policies[0]!.failures.length, 1001);
    assert.equal(listed!.failed, 200_000);
  });
});

describe('IMAP polling', () => {
  let imap: LabImapServer;
  let ctx: TestContext;
  before(async () => {
    imap = await startImapServer({ host: '127.0.0.1' });
    ctx = await testContext({
      intake: INTAKE,
      config: {
        imap: {
          host: imap.host,
          port: imap.port,
          secure: false,
          user: imap.user,
          password: imap.password,
          mailbox: 'Caps',
          processedMailbox: 'Caps-done',
          intervalSeconds: 3600,
        },
      },
    });
  });
  after(async () => {
    await ctx?.close();
    await imap?.stop();
  });

  it('a report over a cap is kept in the rejected list and moved; one at the cap is stored', async () => {
    await withImapClient(imap, async (client) => {
      await client.mailboxCreate('Caps');
      await client.append('Caps', mailWith(reportBytes(OVER_CAP), 'imap-over'));
      await client.append('Caps', mailWith(reportBytes(AT_CAP), 'imap-at'));
    });

    const summary = await pollOnce(ctx);
    assert.deepEqual(summary, { messages: 2, stored: 1, rejected: 1, left: 0 });
    const rejected = (await ctx.store.listRejected({ limit: 100 })).items;
    assert.ok(
      rejected.some((r) => r.source === 'imap' && /organization-name: 257 characters/.test(r.reason)),
    );
    const stored = (await ctx.store.listReports({ limit: 100 })).items;
    assert.ok(stored.some((r) => r.reportId === 'at-cap'));
  });
});

describe('reports import (the built command)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mxguard-caps-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a report over a cap is rejected (exit 1, rejected list); 200,000 rows are stored merged', async () => {
    const data = join(dir, 'data');
    await (await openTestStore(data)).close(); // import needs a store (made by serve or domain add)
    const over = join(dir, 'over.json.gz');
    const rows = join(dir, 'rows.json.gz');
    const fine = join(dir, 'fine.json.gz');
    writeFileSync(over, gzipSync(reportBytes(OVER_CAP)));
    writeFileSync(rows, gzipSync(manyRowsReport(200_000, 'import-rows')));
    writeFileSync(fine, gzippedReport({ 'report-id': 'import-fine' }));
    const r = runCli([
      'reports',
      'import',
      over,
      rows,
      fine,
      '--data-dir',
      data,
      ...testStoreDatabaseArgs(data),
      '--json',
    ]);
    assert.equal(r.code, 1, r.stderr);
    const files = JSON.parse(r.stdout).files as Array<{ path: string; status: string; code?: string }>;
    assert.deepEqual(
      files.map((f) => [f.path, f.status, f.code]),
      [
        [over, 'rejected', 'TLSRPT_FIELD_TOO_LONG'],
        [rows, 'stored', undefined],
        [fine, 'stored', undefined],
      ],
    );
    const store = await reopenTestStore(data);
    try {
      const listed = (await store.listReports({ limit: 10 })).items.find((x) => x.reportId === 'import-rows');
      assert.equal(listed?.failed, 200_000);
      assert.equal((await store.getReport(listed!.id))!.report.policies[0]!.failures.length, 1001);
      assert.ok(
        (await store.listRejected({ limit: 10 })).items.some(
          (x) => x.source === 'import' && /257/.test(x.reason),
        ),
      );
    } finally {
      await store.close();
    }
  });
});
