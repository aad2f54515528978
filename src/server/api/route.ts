// One route of the JSON API, declared once: method and path, its inputs (path parameters, query,
// body) and answers as zod schemas (api/schemas.ts), and its handler. registerRoute makes the
// fastify route that validates the inputs with those schemas (400 naming each problem) and sends
// the answer the handler picked; src/server/openapi.ts documents the same declarations.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { Auth } from '../auth.js';
import type { ServerContext } from '../context.js';

/** A request the API refuses, with its HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly issues?: { path: string; message: string }[],
  ) {
    super(message);
  }
}

export const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** The body of every error answer (schema Error; some add fields). */
export function errorBody(statusCode: number, message: string) {
  return { statusCode, error: STATUS_TEXT[statusCode] ?? 'Error', message };
}

export type Tag = 'auth' | 'domains' | 'reports' | 'tokens' | 'monitoring';

/** One documented answer: a JSON body of `schema`, a body of `mediaType` (sent by the handler), or none (204). */
export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  /** A body that is not JSON (a CSV download): the handler sends it itself and returns the reply. */
  mediaType?: 'text/csv';
}
export type Responses = Record<number, ResponseSpec>;

/** What a handler answers: one of its documented statuses with a body of that status's schema. */
export type Answer<R extends Responses> = {
  [S in keyof R & number]: R[S] extends { schema: infer T extends z.ZodType }
    ? { status: S; body: z.input<T> }
    : { status: S; body?: undefined };
}[keyof R & number];

type Parsed<S> = S extends z.ZodType ? z.output<S> : undefined;

/** What the handler gets: the validated inputs, the request, and the server it runs in. */
export interface RouteInput<P, Q, B> {
  params: Parsed<P>;
  query: Parsed<Q>;
  /** The JSON body as `body` parsed it, or the raw bytes of a `raw` route. */
  body: B extends z.ZodType ? z.output<B> : Buffer;
  req: FastifyRequest;
  reply: FastifyReply;
  ctx: ServerContext;
  auth: Auth;
}

/** A body of raw bytes (not JSON) in one of `types`, of at most `maxBytes(ctx)` bytes. */
export interface RawBody {
  types: readonly string[];
  description: string;
  maxBytes(ctx: ServerContext): number;
}

export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface Route<
  P extends z.ZodObject | undefined = undefined,
  Q extends z.ZodObject | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
  R extends Responses = Responses,
  M extends Method = Method,
  Path extends string = string,
> {
  method: M;
  /** As the OpenAPI document writes it: /api/domains/{name}. */
  path: Path;
  summary: string;
  tag: Tag;
  /** Answers without authentication. */
  public?: boolean;
  params?: P;
  query?: Q;
  /** A JSON body validated with this schema. */
  body?: B;
  raw?: RawBody;
  /** The answers this route gives itself; openapi.ts adds the ones every route of its kind can give. */
  responses: R;
  /** An Answer, or the reply when a helper has sent it already (auth.ts sendAuthFailure). */
  handler(input: RouteInput<P, Q, B>): Promise<Answer<R> | FastifyReply>;
}

// biome-ignore lint/suspicious/noExplicitAny: a list holds routes of every input and answer type
export type AnyRoute = Route<any, any, any, any, Method, string>;

/**
 * Declares a route: `defineRoute({ method, path, ..., responses }).handle(async (input) => answer)`.
 * In two steps so that TypeScript knows the schemas before it reads the handler, and checks every
 * answer against the documented status and schema.
 */
export function defineRoute<
  P extends z.ZodObject | undefined = undefined,
  Q extends z.ZodObject | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
  const R extends Responses = Responses,
  const M extends Method = Method,
  const Path extends string = string,
>(spec: Omit<Route<P, Q, B, R, M, Path>, 'handler'>) {
  return {
    handle: (handler: Route<P, Q, B, R, M, Path>['handler']): Route<P, Q, B, R, M, Path> => ({
      ...spec,
      handler,
    }),
  };
}

/** The body of the 2xx answer of a route's `responses` (undefined for a 204). */
type SuccessBody<R extends Responses> = {
  [S in keyof R & number]: `${S}` extends `2${string}`
    ? R[S] extends { schema: infer T extends z.ZodType }
      ? z.output<T>
      : undefined
    : never;
}[keyof R & number];

/** What a client sends to a route and what it gets back on success (the dashboard's types). */
export type Exchange<X> =
  X extends Route<infer P, infer Q, infer B, infer R, Method, string>
    ? {
        params: P extends z.ZodType ? z.input<P> : undefined;
        query: Q extends z.ZodType ? z.input<Q> : undefined;
        body: B extends z.ZodType ? z.input<B> : undefined;
        answer: SuccessBody<R>;
      }
    : never;

declare module 'fastify' {
  interface FastifyRequest {
    /** How the admin authenticated (set by the API's onRequest hook in api.ts). */
    principal?: 'session' | 'password' | 'token';
  }
  interface FastifyContextConfig {
    /** The declaration a route of the API was made from (the API's onRequest hook reads it). */
    apiRoute?: AnyRoute;
  }
}

/** The fastify URL under the /api prefix: /api/domains/{name} -> /domains/:name. */
export function fastifyUrl(path: string): string {
  return path.replace(/^\/api/, '').replace(/\{(\w+)\}/g, ':$1');
}

/** Adds `route` to `api` (the plugin under /api); a raw-body route gets its own content-type parser. */
export async function registerRoute(
  api: FastifyInstance,
  route: AnyRoute,
  env: { ctx: ServerContext; auth: Auth },
): Promise<void> {
  const options = {
    method: route.method,
    url: fastifyUrl(route.path),
    config: { apiRoute: route },
    handler: async (req: FastifyRequest, reply: FastifyReply) => {
      const input: RouteInput<z.ZodObject, z.ZodObject, z.ZodType> = {
        params: route.params ? parse(route.params, req.params) : undefined,
        query: route.query ? parse(route.query, req.query) : undefined,
        body: route.body ? parse(route.body, req.body) : req.body,
        req,
        reply,
        ...env,
      };
      const answer = await route.handler(input);
      if (answer === (reply as unknown)) return reply;
      const { status, body } = answer as { status: number; body?: unknown };
      return reply.code(status).send(body);
    },
  };
  const raw = route.raw;
  if (!raw) {
    api.route(options);
    return;
  }
  await api.register(async (scope) => {
    // Raw bytes: whatever parsers the parent registered do not apply here.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      [...raw.types],
      { parseAs: 'buffer', bodyLimit: raw.maxBytes(env.ctx) },
      (_req, body, done) => done(null, body),
    );
    scope.route(options);
  });
}

/** `value` (absent: {}) as `schema` reads it, or a 400 ApiError listing every problem with its path. */
export function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  throw new ApiError(
    400,
    issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; '),
    issues,
  );
}
