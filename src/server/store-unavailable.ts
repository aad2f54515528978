// What `mxguard serve` answers while its database cannot be reached (StoreError STORE_UNAVAILABLE: a
// PostgreSQL server down or restarting, a connection cut). The pool reconnects by itself; meanwhile every
// route that needs the store answers "try again later" instead of a 500 or a half-done write:
//   HTTP (API, dashboard, /metrics, TLS-RPT intake): 503 with Retry-After (RFC 9110 §15.6.4, §10.2.3)
//     and a JSON error whose code is STORE_UNAVAILABLE;
//   SMTP intake: 451 4.3.0, a temporary failure the sending MTA retries (RFC 5321 §4.2.1, RFC 3463 §3.4);
//   /healthz: 503 naming the store as the dependency that is down (or too slow to answer).
// Policies are served from memory (app.ts PolicyCache), so policy hosting goes on during an outage.
// The public answers never carry the driver's message (it may name the database host); the log does.
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { type Store, StoreError } from '../store/types.js';

/** Retry-After of a 503 for an unreachable store: a database restart usually takes seconds. */
export const STORE_RETRY_AFTER_SECONDS = 10;
export const STORE_UNAVAILABLE_MESSAGE = 'the database cannot be reached; try again later';
/** SMTP reply text: 451 with enhanced status 4.3.0 (RFC 3463 §3.4: other or undefined mail system status). */
export const STORE_UNAVAILABLE_SMTP = '4.3.0 the database cannot be reached; try again later';

/** True for the StoreError of a database that cannot be reached. */
export function isStoreUnavailable(err: unknown): err is StoreError {
  return err instanceof StoreError && err.code === 'STORE_UNAVAILABLE';
}

/** Logs one unreachable-store refusal (a warning: the outage itself, not a bug of the request). */
export function logStoreUnavailable(logger: Logger, err: StoreError, where: string): void {
  logger.warn({ err: err.message, where }, 'the database cannot be reached; answered "try again later"');
}

/** Sets Retry-After and status 503 on `reply`; the caller sends its route's JSON error body. */
export function replyUnavailable(reply: FastifyReply): FastifyReply {
  return reply.code(503).header('retry-after', String(STORE_RETRY_AFTER_SECONDS));
}

/** How long /healthz waits for the store's answer before calling it slow. */
export const HEALTH_TIMEOUT_MS = 3000;
export const STORE_HEALTH_MESSAGES = {
  unavailable: 'the database cannot be reached',
  slow: `the database did not answer within the health check's time`,
  error: 'the database answered with an error',
} as const;

/** The store's state by a one-row read, bounded by `timeoutMs` (a hung pool is "slow", not a hung check). */
export async function storeHealth(
  store: Store,
  timeoutMs: number,
): Promise<{ state: 'ok' } | { state: keyof typeof STORE_HEALTH_MESSAGES; detail: string }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), timeoutMs);
  });
  try {
    const answer = await Promise.race([store.getSetting('healthz'), late]);
    if (answer === 'late') return { state: 'slow', detail: `no answer within ${timeoutMs} ms` };
    return { state: 'ok' };
  } catch (err) {
    return { state: isStoreUnavailable(err) ? 'unavailable' : 'error', detail: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}
