// TLS-RPT and DMARC aggregate reports from an existing mailbox (RFC 8460 §3 / RFC 7489 §7.2.1.1 "mailto:"
// rua delivered elsewhere; one mailbox may receive both, told apart by content in ingest.ts): every
// config.imap.intervalSeconds the poller logs in with imapflow, reads each message of config.imap.mailbox,
// checks it like the SMTP receiver does (DKIM of the reporting domain, RFC 8460 §3; see mail.ts), and
// moves it to config.imap.processedMailbox (created when missing) once the report, or its rejection
// record, is committed.
//
// The mailbox is meant to hold reports only: every message in it (seen or not, unless flagged
// \Deleted) is processed, so a report someone opened in a mail client is not skipped. Messages are
// read with BODY.PEEK, so one left behind is not marked \Seen. A message is left in place for the next
// round when the store fails or the DKIM key lookup failed (a DNS problem); a message over
// config.intake.maxBytes is not downloaded: it is recorded as rejected by its size and moved.
import { ImapFlow } from 'imapflow';
import type { ServerContext } from './context.js';
import { ingestDeps, recordRejected } from './ingest.js';
import { ingestMail } from './mail.js';

export interface PollSummary {
  /** Messages looked at. */
  messages: number;
  stored: number;
  rejected: number;
  /** Left in the mailbox for the next round. */
  left: number;
  /** Why the round could not run (login, mailbox...), when it could not. */
  error?: string;
}

export interface ImapPoller {
  /** Run a round now (after the one in progress, if any) and say what it did. */
  pollNow(): Promise<PollSummary>;
  /** No more rounds; waits for the one in progress. */
  stop(): Promise<void>;
}

/** Start polling config.imap: a first round right away, then one every intervalSeconds. */
export async function startImapPoller(ctx: ServerContext): Promise<ImapPoller> {
  if (!ctx.config.imap) throw new Error('startImapPoller: config.imap is not set');
  const intervalMs = ctx.config.imap.intervalSeconds * 1000;
  const log = ctx.logger.child({ component: 'imap' });
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  // Rounds run one after another, never two at once.
  let queue: Promise<unknown> = Promise.resolve();

  const runRound = (): Promise<PollSummary> => {
    const round = queue.then(() => pollOnce(ctx));
    queue = round.catch(() => undefined);
    return round;
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      runRound()
        .then((summary) => {
          if (summary.error) log.warn({ error: summary.error }, 'IMAP poll failed');
        })
        .finally(schedule);
    }, intervalMs);
    timer.unref();
  };

  runRound()
    .then((summary) => {
      if (summary.error) log.warn({ error: summary.error }, 'IMAP poll failed');
    })
    .finally(schedule);

  return {
    pollNow: runRound,
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await queue;
    },
  };
}

/** One round: log in, process every message, log out. Never throws. */
export async function pollOnce(ctx: ServerContext): Promise<PollSummary> {
  const imap = ctx.config.imap;
  const summary: PollSummary = { messages: 0, stored: 0, rejected: 0, left: 0 };
  if (!imap) return { ...summary, error: 'config.imap is not set' };
  const log = ctx.logger.child({ component: 'imap' });
  const client = new ImapFlow({
    host: imap.host,
    port: imap.port,
    secure: imap.secure,
    auth: { user: imap.user, pass: imap.password },
    tls: ctx.network.ca.length > 0 ? { ca: ctx.network.ca } : undefined,
    logger: false,
    disableAutoIdle: true,
    connectionTimeout: ctx.network.timeoutMs,
    greetingTimeout: ctx.network.timeoutMs,
    socketTimeout: 120_000,
  });
  // imapflow emits 'error' on socket failures; unhandled, that would end the process.
  client.on('error', (err: Error) => log.warn({ err }, 'IMAP connection error'));
  try {
    await client.connect();
    await client.mailboxCreate(imap.processedMailbox);
    const lock = await client.getMailboxLock(imap.mailbox);
    try {
      const uids = (await client.search({ deleted: false }, { uid: true })) || [];
      for (const uid of uids) {
        summary.messages++;
        const outcome = await processMessage(ctx, client, uid);
        summary[outcome]++;
      }
    } finally {
      lock.release();
    }
  } catch (err) {
    summary.error = (err as Error)?.message ?? String(err);
  } finally {
    await client.logout().catch(() => client.close());
  }
  return summary;
}

/** Ingest one message and move it away, or leave it for the next round. */
async function processMessage(
  ctx: ServerContext,
  client: ImapFlow,
  uid: number,
): Promise<'stored' | 'rejected' | 'left'> {
  const imap = ctx.config.imap!;
  const log = ctx.logger.child({ component: 'imap', uid });
  const deps = ingestDeps(ctx);
  const maxBytes = ctx.config.intake.maxBytes;
  try {
    const head = await client.fetchOne(String(uid), { size: true, envelope: true }, { uid: true });
    if (!head) return 'left';
    const from = head.envelope?.from?.[0]?.address;
    let result: 'stored' | 'rejected';
    if ((head.size ?? 0) > maxBytes) {
      await recordRejected(deps, {
        source: 'imap',
        submitter: from,
        reason: `the message is ${head.size} bytes, more than the limit of ${maxBytes}`,
        size: head.size ?? 0,
        code: 'TLSRPT_TOO_LARGE',
      });
      result = 'rejected';
    } else {
      const message = await client.fetchOne(String(uid), { source: true }, { uid: true });
      if (message === false || !message.source) return 'left';
      const outcome = await ingestMail(ctx, message.source, { source: 'imap', envelopeFrom: from });
      if (outcome.status === 'retry') {
        log.warn({ reason: outcome.reason }, 'mailed report left for the next round');
        return 'left';
      }
      result = outcome.status;
      if (outcome.status === 'rejected') log.info({ code: outcome.code }, 'mailed report rejected');
    }
    // Only now, with the report or its rejection committed, does the message leave the mailbox.
    await client.messageMove(String(uid), imap.processedMailbox, { uid: true });
    return result;
  } catch (err) {
    log.error({ err }, 'could not process a mailed report; left for the next round');
    return 'left';
  }
}
