// The deliverer (issue 12): sends the notifications the monitor wrote with each check (store
// dueDeliveries), a few at a time, and settles each attempt in the store: delivered, or retried with
// exponential backoff (BACKOFF_FIRST_MS doubling, at most BACKOFF_MAX_MS apart) until GIVE_UP_MS after the
// delivery was created, then abandoned. It polls every POLL_MS and when woken (the monitor calls wake()
// after recording a check). At most one attempt per target is under way, so a receiver that never
// answers holds one slot for at most its timeout, never the other targets, and never the checks (they
// do not wait for the deliverer). Runs in one serve process only (src/server/start.ts).
import type { Logger } from 'pino';
import type { Delivery, MonitorStore } from '../../store/monitor-types.js';
import type { MonitorSettings } from '../settings.js';
import { sendAlertMail } from './email.js';
import { type AttemptResult, sendWebhook } from './webhook.js';

/** The first retry waits this long; each further one twice as long as the one before... */
export const BACKOFF_FIRST_MS = 30_000;
/** ...but never longer than this. */
export const BACKOFF_MAX_MS = 3_600_000;
/** A delivery not made this long after it was created is abandoned. */
export const GIVE_UP_MS = 86_400_000;
/** How often due deliveries are looked for without a wake(). */
export const POLL_MS = 5_000;
/** Attempts under way at the same time (at most one per target). */
export const DELIVERY_CONCURRENCY = 4;
/** Due deliveries read per look (enough to find ones for an idle target behind a busy one's). */
const FETCH_LIMIT = 200;

/**
 * When a delivery that just failed is tried next: BACKOFF_FIRST_MS after its first failure, doubling,
 * at most BACKOFF_MAX_MS, and never later than GIVE_UP_MS after creation; undefined once that is past.
 * `attempts` counts the attempts before the one that just failed.
 */
export function nextAttemptAt(
  delivery: Pick<Delivery, 'attempts' | 'createdAt'>,
  now: Date,
): Date | undefined {
  const deadline = Date.parse(delivery.createdAt) + GIVE_UP_MS;
  if (!(now.getTime() < deadline)) return undefined;
  const delay = Math.min(BACKOFF_FIRST_MS * 2 ** Math.min(delivery.attempts, 30), BACKOFF_MAX_MS);
  return new Date(Math.min(now.getTime() + delay, deadline));
}

/** The webhook URL's origin only: a path may carry a token (Slack, Discord...), logs never show it. */
function logTarget(delivery: Delivery): string {
  if (delivery.channel === 'email') return delivery.target;
  try {
    return new URL(delivery.target).origin;
  } catch {
    return '(not a URL)';
  }
}

export interface DelivererOptions {
  store: Pick<MonitorStore, 'dueDeliveries' | 'settleDelivery'>;
  settings: Pick<MonitorSettings, 'webhooks' | 'email'>;
  /** Default: the system clock. */
  clock?: () => Date;
  log?: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Extra trust anchors (PEM) for HTTPS webhooks and the SMTP server (serve's --ca-file). */
  ca?: readonly string[];
  /** Default DELIVERY_CONCURRENCY. */
  concurrency?: number;
  /** Default POLL_MS. */
  pollMs?: number;
  /** One attempt's time limit, for both channels (default: each channel's own). */
  timeoutMs?: number;
}

export class Deliverer {
  private readonly options: DelivererOptions;
  private readonly clock: () => Date;
  private readonly concurrency: number;
  /** Attempts under way: delivery id -> target key. */
  private readonly inFlight = new Map<number, string>();
  private readonly attempts = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private stopping = new AbortController();
  /** The look at the store under way, and the one asked for meanwhile (one, however many asked). */
  private looking: Promise<Promise<void>[]> | undefined;
  private queued: Promise<Promise<void>[]> | undefined;

  constructor(options: DelivererOptions) {
    this.options = options;
    this.clock = options.clock ?? (() => new Date());
    this.concurrency = Math.max(1, options.concurrency ?? DELIVERY_CONCURRENCY);
  }

  /** Looks for due deliveries now and every pollMs. */
  start(): void {
    if (this.timer !== undefined) return;
    this.stopping = new AbortController();
    this.timer = setInterval(() => this.wake(), this.options.pollMs ?? POLL_MS);
    this.timer.unref();
    this.wake();
  }

  /** Ends polling and aborts the attempts under way (they stay pending: the next start sends them). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.stopping.abort();
    while (this.attempts.size > 0) await Promise.allSettled([...this.attempts]);
  }

  /** Looks for due deliveries now (without waiting for them): the monitor calls it after a check. */
  wake(): void {
    this.deliverDue().catch((err: unknown) =>
      this.options.log?.error({ err }, 'alert deliveries: reading the due ones failed'),
    );
  }

  /**
   * Starts attempts for due deliveries, as many as free slots allow (one per target), and resolves once
   * the attempts it started are settled. Asked while a look is under way, it looks again right after
   * it. Tests await it; wake() and the poll do not.
   */
  async deliverDue(): Promise<void> {
    await Promise.all(await this.nextLook());
  }

  private nextLook(): Promise<Promise<void>[]> {
    if (this.queued !== undefined) return this.queued;
    if (this.looking === undefined) {
      this.looking = this.look().finally(() => {
        this.looking = undefined;
      });
      return this.looking;
    }
    this.queued = this.looking
      .catch(() => [])
      .then(() => {
        this.queued = undefined;
        return this.nextLook();
      });
    return this.queued;
  }

  /** One look: reads the due deliveries and starts what the free slots allow; returns the attempts started. */
  private async look(): Promise<Promise<void>[]> {
    if (this.stopping.signal.aborted || this.inFlight.size >= this.concurrency) return [];
    const due = await this.options.store.dueDeliveries(this.clock(), FETCH_LIMIT);
    const busy = new Set(this.inFlight.values());
    const started: Promise<void>[] = [];
    for (const delivery of due) {
      if (this.inFlight.size >= this.concurrency || this.stopping.signal.aborted) break;
      const key = delivery.channel === 'email' ? 'email' : `webhook ${delivery.target}`;
      if (this.inFlight.has(delivery.id) || busy.has(key)) continue;
      busy.add(key);
      started.push(this.begin(delivery, key));
    }
    return started;
  }

  private begin(delivery: Delivery, key: string): Promise<void> {
    this.inFlight.set(delivery.id, key);
    const attempt = this.attempt(delivery).then((settled) => {
      this.inFlight.delete(delivery.id);
      this.attempts.delete(attempt);
      // A slot is free: deliveries that waited for it go now (not after a failed settle: the delivery
      // would still be due, and tried again at once; the poll retries it).
      if (settled && !this.stopping.signal.aborted) this.wake();
    });
    this.attempts.add(attempt);
    return attempt;
  }

  /** Sends and settles one delivery; false when nothing was settled. Never throws. */
  private async attempt(delivery: Delivery): Promise<boolean> {
    const result = await this.send(delivery);
    // Aborted because serve is stopping: not an attempt; the delivery stays as it was.
    if (this.stopping.signal.aborted && !result.ok) return false;
    const now = this.clock();
    const log = {
      delivery: delivery.id,
      alert: delivery.alertId,
      channel: delivery.channel,
      to: logTarget(delivery),
    };
    try {
      if (result.ok) {
        await this.options.store.settleDelivery(delivery.id, { ok: true }, now);
        this.options.log?.info(log, 'alert notification delivered');
        return true;
      }
      const next = result.final ? undefined : nextAttemptAt(delivery, now);
      await this.options.store.settleDelivery(
        delivery.id,
        { ok: false, error: result.error, nextAttemptAt: next },
        now,
      );
      if (next === undefined) {
        this.options.log?.error({ ...log, error: result.error }, 'alert notification abandoned');
      } else {
        this.options.log?.warn(
          { ...log, error: result.error, next: next.toISOString() },
          'alert notification failed, will retry',
        );
      }
      return true;
    } catch (err) {
      this.options.log?.error({ ...log, err }, 'alert deliveries: settling an attempt failed');
      return false;
    }
  }

  /** One attempt with today's settings: a channel no longer configured abandons the delivery. */
  private async send(delivery: Delivery): Promise<AttemptResult & { final?: boolean }> {
    const common = {
      signal: this.stopping.signal,
      ...(this.options.ca !== undefined ? { ca: this.options.ca } : {}),
      ...(this.options.timeoutMs !== undefined ? { timeoutMs: this.options.timeoutMs } : {}),
    };
    const settings = this.options.settings;
    if (delivery.channel === 'webhook') {
      const target = settings.webhooks.find((w) => w.url === delivery.target);
      if (target === undefined)
        return { ok: false, error: 'this webhook is no longer configured', final: true };
      return sendWebhook(target, delivery, this.clock(), common);
    }
    if (settings.email === undefined)
      return { ok: false, error: 'monitor.email is no longer configured', final: true };
    const to = delivery.target.split(', ').filter((a) => a !== '');
    return sendAlertMail(settings.email, to, delivery, common);
  }
}
