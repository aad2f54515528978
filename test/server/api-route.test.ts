// A route declaration (src/server/api/route.ts): its inputs are validated with its zod schemas before
// the handler runs (400 naming every problem), the handler's answer is sent with its status, and
// TypeScript refuses an answer the declaration does not document (npm run typecheck: the two
// expected errors below fail the check once such an answer type-checks).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ApiError, defineRoute, parse, registerRoute } from '../../src/server/api/route.js';
import { ApiErrorBody } from '../../src/server/api/schemas.js';
import { openTestApp, type TestApp } from '../helpers/browser.js';

const Echo = z.object({ name: z.string(), days: z.number(), note: z.string().optional() });

const echo = defineRoute({
  method: 'POST',
  path: '/api/echo/{name}',
  summary: 'echo',
  tag: 'domains',
  params: z.object({ name: z.string().min(3) }),
  query: z.object({ days: z.coerce.number().int().min(1).default(7) }),
  body: z.object({ note: z.string().max(5).optional() }).strict(),
  responses: {
    200: { description: 'echoed', schema: Echo },
    404: { description: 'no such name', schema: ApiErrorBody },
  },
}).handle(async ({ params, query, body }) => {
  if (params.name === 'gone') throw new ApiError(404, 'no gone');
  return { status: 200, body: { name: params.name, days: query.days, note: body.note } };
});

// Type-level: an undocumented status and a body that misses its schema are refused.
defineRoute({
  method: 'GET',
  path: '/api/typed',
  summary: 'typed',
  tag: 'domains',
  responses: { 200: { description: 'ok', schema: Echo }, 204: { description: 'none' } },
  // @ts-expect-error 201 is not a documented status of this route
}).handle(async () => ({ status: 201, body: { name: 'x', days: 1 } }));
defineRoute({
  method: 'GET',
  path: '/api/typed',
  summary: 'typed',
  tag: 'domains',
  responses: { 200: { description: 'ok', schema: Echo } },
  // @ts-expect-error `days` is missing from the 200 body
}).handle(async () => ({ status: 200, body: { name: 'x' } }));

describe('route declarations', () => {
  let t: TestApp;
  let app: FastifyInstance;
  before(async () => {
    t = await openTestApp();
    app = Fastify();
    app.setErrorHandler((err, _req, reply) => {
      const e = err as unknown as ApiError;
      reply.code(e.statusCode ?? 500).send({ message: e.message, issues: e.issues });
    });
    await app.register(async (api) => registerRoute(api, echo, { ctx: t.ctx, auth: undefined as never }), {
      prefix: '/api',
    });
    await app.ready();
  });
  after(async () => {
    await app.close();
    await t.close();
  });

  test('valid inputs reach the handler parsed (defaults, coercion)', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/echo/abcd?days=3', payload: { note: 'hi' } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { name: 'abcd', days: 3, note: 'hi' });
    const defaulted = await app.inject({ method: 'POST', url: '/api/echo/abcd', payload: {} });
    assert.deepEqual(defaulted.json(), { name: 'abcd', days: 7 });
  });

  test('each invalid input is a 400 naming the field, before the handler runs', async () => {
    for (const [url, payload, path] of [
      ['/api/echo/ab', {}, 'name'],
      ['/api/echo/abcd?days=0', {}, 'days'],
      ['/api/echo/abcd?days=x', {}, 'days'],
      ['/api/echo/abcd', { note: 'too long' }, 'note'],
      ['/api/echo/abcd', { other: 1 }, ''],
    ] as const) {
      const res = await app.inject({ method: 'POST', url, payload });
      assert.equal(res.statusCode, 400, `${url} ${JSON.stringify(payload)}`);
      assert.deepEqual(
        res.json().issues.map((i: { path: string }) => i.path),
        [path],
      );
    }
    // A failing params check wins over the handler's own 404.
    assert.equal((await app.inject({ method: 'POST', url: '/api/echo/go', payload: {} })).statusCode, 400);
    assert.equal((await app.inject({ method: 'POST', url: '/api/echo/gone', payload: {} })).statusCode, 404);
  });

  test('parse reads an absent value as {} and joins the problems into the message', () => {
    assert.deepEqual(parse(z.object({ a: z.number().default(1) }), undefined), { a: 1 });
    assert.throws(
      () => parse(z.object({ a: z.number(), b: z.string() }), { a: 'x' }),
      (err: ApiError) =>
        err.statusCode === 400 && /^a: .*; b: /.test(err.message) && err.issues?.length === 2,
    );
  });
});
