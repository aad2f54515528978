// HTTPS intake of TLS-RPT aggregate reports: RFC 8460 §5.4 (POST of application/tlsrpt+gzip or
// application/tlsrpt+json; a 2xx reply means "received", so it is sent only once the report is stored).
//
//   POST /tlsrpt           any report
//   POST /tlsrpt/:domain   a report that covers :domain (policies without policy-domain are taken to be
//                          about it); a report only about other domains is refused with 400
//
// Replies: 201 {stored, warnings} for a new report, 200 for one already stored (same organization and
// report-id), 400/413/415/429/503 with {error: {code, message}}: 413 for input refused for its size
// (the body, the decompressed JSON, a field or list over its cap, more time or memory than a decoder
// thread may use; ingest.ts refusedForSize), 400 for other bad content, 503 INTAKE_BUSY with
// Retry-After when every report decoder thread is busy and its queue is full (checked before the body
// is read, and again when it is handed over), 503 STORE_UNAVAILABLE with Retry-After while the
// database cannot be reached (store-unavailable.ts; nothing of the report is kept). Content types:
// the two of RFC 8460 §5.4; application/json, application/gzip, application/x-gzip and
// application/octet-stream are accepted too (senders get it wrong) with a warning in the reply;
// anything else is 415 before the body is read.
// Limits: a token bucket per client (clientKey: IPv6 per /64) and worker process
// (config.intake.ratePerMinute, 429 with Retry-After, checked before the body is read), the request body cap (config.intake.maxBytes: 413, reading stops at the cap), and the
// caps of decodeReports (decompressed size, JSON depth, every field: a gzip bomb is 413 with bounded
// memory), which runs in a worker thread so that policy hosting never waits for it.
// Input that reaches the decoder and is refused is also kept in the rejected list (source "https", the
// client IP, the reason) so the dashboard shows which senders' reports fail; refusals before the body
// is read (415, 413 on the raw body, 429) are only logged and counted.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hostNameProblem } from '../common/hostname.js';
import { domainKey } from '../store/domain-rules.js';
import { clientKey } from './client-key.js';
import type { ServerContext } from './context.js';
import { ingestDeps, ingestReport, intakeMetrics, recordRejected, refusedForSize } from './ingest.js';
import { RateLimiter } from './ratelimit.js';
import { DecoderBusyError, reportDecoderFor } from './report-decoder.js';
import {
  isStoreUnavailable,
  logStoreUnavailable,
  replyUnavailable,
  STORE_UNAVAILABLE_MESSAGE,
} from './store-unavailable.js';

// RFC 8460 §5.4: the media types of a report POST.
const STANDARD_TYPES = ['application/tlsrpt+json', 'application/tlsrpt+gzip'];
// Accepted with a warning.
const TOLERATED_TYPES = [
  'application/json',
  'application/gzip',
  'application/x-gzip',
  'application/octet-stream',
];

export interface IntakeWarning {
  code: string;
  message: string;
  where?: string;
}

/** Mount POST /tlsrpt and POST /tlsrpt/:domain on `app` (in their own encapsulated scope). */
export async function registerIntake(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  await app.register(async (scope) => intakeRoutes(scope, ctx));
}

async function intakeRoutes(scope: FastifyInstance, ctx: ServerContext): Promise<void> {
  const decoder = ctx.reportDecoder ?? reportDecoderFor(ctx.config.intake);
  const deps = { ...ingestDeps(ctx), decoder };
  const counters = intakeMetrics(ctx.metrics);
  const limiter = new RateLimiter({
    perMinute: ctx.config.intake.ratePerMinute,
    now: () => ctx.now().getTime(),
  });

  // Only report bodies, read as raw bytes up to the cap; every other type is 415 (the API's JSON
  // parser lives outside this scope).
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser(
    [...STANDARD_TYPES, ...TOLERATED_TYPES],
    { parseAs: 'buffer', bodyLimit: ctx.config.intake.maxBytes },
    (_request, body, done) => done(null, body),
  );

  scope.addHook('onRequest', async (request, reply) => {
    // Not worth reading a body that no decoder thread could take.
    if (decoder.full) return busy(request, reply, new DecoderBusyError());
    const decision = limiter.take(clientKey(request.ip));
    if (decision.allowed) return;
    counters.rejected.inc({ source: 'https', code: 'INTAKE_RATE_LIMITED' });
    reply.header('retry-after', String(decision.retryAfterSeconds));
    return sendError(
      reply,
      429,
      'INTAKE_RATE_LIMITED',
      `too many reports from ${request.ip}; try again later`,
    );
  });

  const busy = (request: FastifyRequest, reply: FastifyReply, error: DecoderBusyError) => {
    counters.rejected.inc({ source: 'https', code: error.code });
    request.log.info({ ip: request.ip }, 'TLS-RPT report refused: every decoder is busy');
    reply.header('retry-after', String(error.retryAfterSeconds));
    return sendError(reply, 503, error.code, error.message);
  };

  scope.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof DecoderBusyError) return busy(request, reply, error);
    const refused = refusal(error, ctx.config.intake.maxBytes);
    if (refused) {
      counters.rejected.inc({ source: 'https', code: refused.code });
      request.log.info({ ip: request.ip, code: refused.code }, 'TLS-RPT report refused');
      return sendError(reply, refused.status, refused.code, refused.message);
    }
    if (isStoreUnavailable(error)) {
      logStoreUnavailable(ctx.logger, error, request.url);
      return sendError(replyUnavailable(reply), 503, error.code, STORE_UNAVAILABLE_MESSAGE);
    }
    ctx.logger.error({ err: error, ip: request.ip }, 'TLS-RPT intake failed');
    reply.header('retry-after', '60');
    return sendError(reply, 503, 'INTAKE_UNAVAILABLE', 'the report could not be stored; try again later');
  });

  const handle = async (request: FastifyRequest<{ Params: { domain?: string } }>, reply: FastifyReply) => {
    const bytes = request.body as Buffer;
    const warnings: IntakeWarning[] = [];
    const type = mediaType(request.headers['content-type']);
    if (!STANDARD_TYPES.includes(type)) {
      warnings.push({
        code: 'INTAKE_CONTENT_TYPE',
        message: `sent as ${type}; RFC 8460 §5.4 uses application/tlsrpt+json or application/tlsrpt+gzip`,
      });
    }
    let policyDomain: string | undefined;
    if (request.params.domain !== undefined) {
      policyDomain = domainKey(request.params.domain);
      const why = hostNameProblem(policyDomain);
      if (why) {
        counters.rejected.inc({ source: 'https', code: 'INTAKE_BAD_DOMAIN' });
        return sendError(reply, 400, 'INTAKE_BAD_DOMAIN', `"${request.params.domain}" in the URL: ${why}`);
      }
    }

    const kind = payloadKind(bytes);
    if (kind === 'other') {
      const message =
        bytes.length === 0
          ? 'the body is empty'
          : 'the body is neither a JSON object nor gzip (RFC 8460 §5.4)';
      await recordRejected(deps, {
        source: 'https',
        submitter: request.ip,
        reason: message,
        size: bytes.length,
        code: 'TLSRPT_NOT_A_REPORT',
      });
      return sendError(reply, 400, 'TLSRPT_NOT_A_REPORT', message);
    }
    if ((kind === 'gzip') !== type.endsWith('gzip') && type !== 'application/octet-stream') {
      warnings.push({ code: 'INTAKE_CONTENT_MISMATCH', message: `sent as ${type} but the body is ${kind}` });
    }

    const result = await ingestReport(deps, bytes, {
      source: 'https',
      submitter: request.ip,
      // DKIM is a mail thing (RFC 8460 §3); an HTTPS report carries no signature.
      dkim: 'none',
      policyDomain,
    });
    if ('rejected' in result) {
      request.log.info({ ip: request.ip, code: result.code }, 'TLS-RPT report rejected');
      return sendError(reply, refusedForSize(result.code) ? 413 : 400, result.code, result.rejected);
    }
    warnings.push(...result.warnings.map(({ code, message, where }) => ({ code, message, where })));
    const created = result.stored.some((s) => s.created);
    return reply.code(created ? 201 : 200).send({ stored: result.stored, warnings });
  };

  scope.post('/tlsrpt', handle);
  scope.post('/tlsrpt/:domain', handle);
}

function sendError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send({ error: { code, message } });
}

/** The client's mistakes that fastify finds before the handler runs. */
function refusal(
  error: FastifyError,
  maxBytes: number,
): { status: number; code: string; message: string } | undefined {
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return {
      status: 413,
      code: 'INTAKE_TOO_LARGE',
      message: `the request body is larger than ${maxBytes} bytes`,
    };
  }
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    const message = `Content-Type must be ${STANDARD_TYPES.join(' or ')} (RFC 8460 §5.4)`;
    return { status: 415, code: 'INTAKE_UNSUPPORTED_TYPE', message };
  }
  const status = error.statusCode ?? 500;
  return status >= 400 && status < 500
    ? { status, code: 'INTAKE_BAD_REQUEST', message: error.message }
    : undefined;
}

/** The media type of a Content-Type header, lower case, without parameters. */
function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

/** What the body is, from its first bytes: gzip (magic 1f 8b), JSON (an object), or neither. */
function payloadKind(bytes: Uint8Array): 'gzip' | 'json' | 'other' {
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) return 'gzip';
  for (let i = 0; i < bytes.length && i < 1024; i++) {
    const b = bytes[i];
    if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) continue;
    if (b === 0xef && bytes[i + 1] === 0xbb && bytes[i + 2] === 0xbf) {
      i += 2; // a UTF-8 byte order mark
      continue;
    }
    return b === 0x7b ? 'json' : 'other';
  }
  return 'other';
}
