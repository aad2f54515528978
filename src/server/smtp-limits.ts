// The intake limits of the SMTP receiver (src/server/mail.ts), so that no client can shut out the
// others by holding connections (issue 10: 50 connections kept open with NOOP filled every slot):
//
// - concurrent sessions per client (clientKey: IPv6 per /64), and the last `reservedForNewClients` of
//   the `maxClients` slots only for clients that have no session open;
// - deadlines a session cannot push back by talking: from the greeting, and again from the end of each
//   message, it has `idleSeconds` to start DATA, and the message `dataSeconds` to arrive. MAIL, RCPT,
//   NOOP, RSET, EHLO... never extend them; only a whole message does. At most `maxIdleCommands` commands
//   that deliver nothing (NOOP, RSET, HELP, VRFY, EHLO, HELO) are answered between two messages;
// - messages (one per MAIL FROM) per client per minute, a token bucket (ratelimit.ts).
//
// Every refusal is a 421 reply (RFC 5321 §3.8: the server closes the channel) whose text starts with
// an RFC 3463 enhanced status code: X.7.0 for a limit on this client, X.4.5 (congestion) when the
// server is full, X.4.2 when a deadline passed. This module only counts and keeps the timers; mail.ts
// sends the replies and closes the connections.

import { clientKey } from './client-key.js';
import type { ServeConfig } from './context.js';
import { RateLimiter } from './ratelimit.js';

export type SmtpLimits = ServeConfig['smtpLimits'] & {};

export type RefusalReason =
  | 'client-connections'
  | 'reserved'
  | 'server-full'
  | 'idle-commands'
  | 'idle-timeout'
  | 'data-timeout'
  | 'message-rate';

export interface Refusal {
  reason: RefusalReason;
  /** The text of the 421 reply: enhanced status code (RFC 3463), then words. */
  text: string;
}

interface Session {
  key: string;
  idleCommands: number;
  timer?: NodeJS.Timeout;
  expired: (refusal: Refusal) => void;
}

export class SmtpLimiter {
  private readonly sessions = new Map<string, Session>();
  /** Open sessions per client key. */
  private readonly perClient = new Map<string, number>();
  private readonly messages: RateLimiter;

  /** `now`: the clock of the message rate (milliseconds); the deadlines use real timers. */
  constructor(
    private readonly limits: SmtpLimits,
    options: { now?: () => number } = {},
  ) {
    if (limits.reservedForNewClients >= limits.maxClients) {
      throw new RangeError('reservedForNewClients must be less than maxClients');
    }
    this.messages = new RateLimiter({ perMinute: limits.messagesPerMinute, now: options.now });
  }

  /** Sessions open now. */
  get openSessions(): number {
    return this.sessions.size;
  }

  /**
   * A new session from `address`: undefined when admitted (its idle deadline starts; `expired` is
   * called when a deadline passes), or why it is refused.
   */
  open(id: string, address: string, expired: (refusal: Refusal) => void): Refusal | undefined {
    const key = clientKey(address);
    const mine = this.perClient.get(key) ?? 0;
    const total = this.sessions.size;
    const { maxClients, maxConnectionsPerClient, reservedForNewClients } = this.limits;
    if (mine >= maxConnectionsPerClient) {
      return refusal('client-connections', `4.7.0 too many connections from your address; try again later`);
    }
    if (total >= maxClients) {
      return refusal('server-full', '4.4.5 too many connections; try again later');
    }
    if (mine > 0 && total >= maxClients - reservedForNewClients) {
      return refusal(
        'reserved',
        '4.7.0 the remaining connections are kept for other clients; try again later',
      );
    }
    this.perClient.set(key, mine + 1);
    const session: Session = { key, idleCommands: 0, expired };
    this.sessions.set(id, session);
    this.arm(session, 'idle-timeout');
    return undefined;
  }

  /** A command that delivers nothing (NOOP, RSET, HELP, VRFY, EHLO, HELO): refused when one too many. */
  idleCommand(id: string): Refusal | undefined {
    const session = this.sessions.get(id);
    if (!session) return undefined;
    session.idleCommands++;
    if (session.idleCommands <= this.limits.maxIdleCommands) return undefined;
    return refusal('idle-commands', '4.7.0 too many commands without a message; closing');
  }

  /** MAIL FROM: one message of the client's rate. */
  mailFrom(id: string): Refusal | undefined {
    const session = this.sessions.get(id);
    if (!session) return undefined;
    const decision = this.messages.take(session.key);
    if (decision.allowed) return undefined;
    return refusal(
      'message-rate',
      `4.7.0 too many messages from your address; try again in ${decision.retryAfterSeconds} s`,
    );
  }

  /** DATA accepted: the message has dataSeconds to arrive. */
  dataStarted(id: string): void {
    const session = this.sessions.get(id);
    if (session) this.arm(session, 'data-timeout');
  }

  /** The message is in: no deadline while the receiver checks and stores it. */
  dataReceived(id: string): void {
    const session = this.sessions.get(id);
    if (session) clearTimeout(session.timer);
  }

  /** The message was answered: the command count and the idle deadline start again. */
  messageDone(id: string): void {
    const session = this.sessions.get(id);
    if (!session) return;
    session.idleCommands = 0;
    this.arm(session, 'idle-timeout');
  }

  /** The session ended (any way): its slot is free. Unknown ids (refused sessions) are ignored. */
  close(id: string): void {
    const session = this.sessions.get(id);
    if (!session) return;
    clearTimeout(session.timer);
    this.sessions.delete(id);
    const left = (this.perClient.get(session.key) ?? 1) - 1;
    if (left > 0) this.perClient.set(session.key, left);
    else this.perClient.delete(session.key);
  }

  /** Stop every timer (the receiver is stopping). */
  stop(): void {
    for (const session of this.sessions.values()) clearTimeout(session.timer);
  }

  private arm(session: Session, reason: 'idle-timeout' | 'data-timeout'): void {
    clearTimeout(session.timer);
    const seconds = reason === 'idle-timeout' ? this.limits.idleSeconds : this.limits.dataSeconds;
    const text =
      reason === 'idle-timeout'
        ? `4.4.2 no message within ${seconds} s; closing`
        : `4.4.2 the message took longer than ${seconds} s; closing`;
    session.timer = setTimeout(() => session.expired(refusal(reason, text)), seconds * 1000);
  }
}

function refusal(reason: RefusalReason, text: string): Refusal {
  return { reason, text };
}
