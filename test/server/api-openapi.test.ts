// The OpenAPI document and docs/api.md describe exactly the API there is: every route is documented,
// every documented operation exists, and real answers match the documented status codes and schemas.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { registerApi } from '../../src/server/api.js';
import { OPERATIONS, type Operation, openApiDocument, SCHEMAS } from '../../src/server/openapi.js';
import { openTestApp, reportJson, type TestApp } from '../helpers/browser.js';

const DOC_PATH = new URL('../../docs/api.md', import.meta.url);
const key = (method: string, path: string) => `${method.toUpperCase()} ${path}`;

describe('OpenAPI document', () => {
  let t: TestApp;
  let app: FastifyInstance;
  const routes: string[] = [];

  before(async () => {
    t = await openTestApp({ start: new Date('2026-05-10T08:00:00Z') });
    app = Fastify();
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const m of methods)
        if (m !== 'HEAD' && route.url.startsWith('/api/')) routes.push(key(m, route.url));
    });
    registerApi(app, t.ctx);
    await app.ready();
  });
  after(async () => {
    await app.close();
    await t.close();
  });

  test('documents every API route, and nothing else', () => {
    const documented = OPERATIONS.map((op) => key(op.method, op.path.replace(/\{(\w+)\}/g, ':$1')));
    assert.deepEqual([...routes].sort(), [...documented].sort());
  });

  test('is OpenAPI 3.1 with resolvable references', async () => {
    const res = await app.inject({ url: '/api/openapi.json' });
    assert.equal(res.statusCode, 200);
    const doc = res.json();
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(
      doc.info.version,
      JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version,
    );
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map(
      (m) => m[1]!,
    );
    assert.ok(refs.length > 20);
    for (const ref of refs) assert.ok(doc.components.schemas[ref], `missing schema ${ref}`);
    for (const [path, item] of Object.entries(
      doc.paths as Record<string, Record<string, { responses: object }>>,
    )) {
      for (const [method, op] of Object.entries(item)) {
        assert.ok(Object.keys(op.responses).length > 0, `${method} ${path} has responses`);
      }
    }
    assert.deepEqual(doc.paths['/api/login'].post.security, [], 'login needs no auth');
    assert.equal(doc.paths['/api/domains'].get.security, undefined, 'the rest uses the global security');
  });

  test('real answers have documented status codes and match their schemas', async () => {
    const auth = { authorization: `Bearer ${t.password}` };
    const checked = new Set<string>();
    const call = async (
      op: Operation,
      url: string,
      options: { payload?: string | object; headers?: Record<string, string> } = {},
    ) => {
      const res = await app.inject({
        method: op.method.toUpperCase() as 'GET',
        url,
        headers: { ...auth, ...options.headers },
        ...(options.payload !== undefined ? { payload: options.payload } : {}),
      });
      const documented = op.responses[res.statusCode];
      assert.ok(documented, `${op.method} ${url}: status ${res.statusCode} is not documented (${res.body})`);
      if (documented.schema) {
        const parsed = SCHEMAS[documented.schema].safeParse(res.json());
        assert.ok(
          parsed.success,
          `${op.method} ${url}: ${documented.schema}: ${parsed.error?.message} in ${res.body}`,
        );
      } else if (res.statusCode === 204) {
        assert.equal(res.body, '');
      }
      checked.add(key(op.method, op.path));
      return res;
    };
    const op = (method: string, path: string) => {
      const found = OPERATIONS.find((o) => o.method === method && o.path === path);
      assert.ok(found, `${method} ${path}`);
      return found;
    };

    await call(op('get', '/api/openapi.json'), '/api/openapi.json');
    const login = op('post', '/api/login');
    await call(login, '/api/login', { payload: { password: t.password }, headers: {} });
    await call(login, '/api/login', { payload: { password: 'nope' } });
    await call(login, '/api/login', { payload: {} });
    await call(op('get', '/api/session'), '/api/session');
    const token = (await call(op('post', '/api/tokens'), '/api/tokens', { payload: { name: 'ci' } })).json();
    await call(op('get', '/api/tokens'), '/api/tokens');
    await call(op('delete', '/api/tokens/{id}'), `/api/tokens/${token.id}`);
    await call(op('delete', '/api/tokens/{id}'), '/api/tokens/unknown');

    const add = op('post', '/api/domains');
    await call(add, '/api/domains', { payload: { name: 'example.com', mx: ['mx.example.com'] } });
    await call(add, '/api/domains', { payload: { name: 'example.com', mx: ['mx.example.com'] } });
    await call(add, '/api/domains', { payload: { name: 'x' } });
    await call(op('get', '/api/domains'), '/api/domains');
    await call(op('get', '/api/domains/{name}'), '/api/domains/example.com');
    await call(op('get', '/api/domains/{name}'), '/api/domains/unknown.example');
    const update = op('patch', '/api/domains/{name}');
    await call(update, '/api/domains/example.com', { payload: { mode: 'enforce' } });
    await call(update, '/api/domains/example.com', { payload: { mode: 'x' } });
    await call(update, '/api/domains/unknown.example', { payload: { mode: 'enforce' } });
    await call(op('get', '/api/domains/{name}/policy'), '/api/domains/example.com/policy');
    const records = op('get', '/api/domains/{name}/records');
    await call(records, '/api/domains/example.com/records?policyHostTarget=192.0.2.1');
    await call(records, '/api/domains/example.com/records?ttl=x');
    await call(op('get', '/api/domains/{name}/stats'), '/api/domains/example.com/stats');
    t.ctx.store.logFetch({
      at: new Date().toISOString(),
      domain: 'example.com',
      clientIp: '192.0.2.9',
      userAgent: 'Google-SMTP-STS',
    });
    await call(op('get', '/api/domains/{name}/fetches'), '/api/domains/example.com/fetches');

    const imp = op('post', '/api/reports/import');
    const json = reportJson({
      organization: 'Org',
      reportId: 'r1',
      domain: 'example.com',
      day: '2026-05-09',
      successful: 9,
    });
    const imported = await call(imp, '/api/reports/import', {
      payload: json,
      headers: { 'content-type': 'application/tlsrpt+json' },
    });
    await call(imp, '/api/reports/import', {
      payload: 'nope',
      headers: { 'content-type': 'application/octet-stream' },
    });
    await call(imp, '/api/reports/import', { payload: '{}', headers: { 'content-type': 'text/plain' } });
    await call(imp, '/api/reports/import', {
      payload: Buffer.alloc(t.ctx.config.intake.maxBytes + 1),
      headers: { 'content-type': 'application/octet-stream' },
    });
    await call(op('get', '/api/reports'), '/api/reports');
    await call(op('get', '/api/reports'), '/api/reports?limit=0');
    await call(op('get', '/api/reports/{id}'), `/api/reports/${imported.json().stored[0].id}`);
    await call(op('get', '/api/reports/{id}'), '/api/reports/424242');
    await call(op('get', '/api/rejected'), '/api/rejected');
    await call(op('get', '/api/rejected'), '/api/rejected?cursor=nonsense');
    const remove = op('delete', '/api/reports/{id}');
    await call(remove, `/api/reports/${imported.json().stored[0].id}`);
    await call(remove, `/api/reports/${imported.json().stored[0].id}`);
    await call(op('delete', '/api/domains/{name}'), '/api/domains/example.com');
    await call(op('delete', '/api/domains/{name}'), '/api/domains/example.com');

    const cookie = String(
      (await app.inject({ method: 'POST', url: '/api/login', payload: { password: t.password } })).headers[
        'set-cookie'
      ],
    ).split(';')[0]!;
    await call(op('post', '/api/password'), '/api/password', {
      payload: { current: t.password, next: 'short' },
      headers: { cookie },
    });
    await call(op('post', '/api/logout'), '/api/logout', { payload: {}, headers: { cookie } });
    await call(op('post', '/api/password'), '/api/password', {
      payload: { current: t.password, next: 'another-password' },
    });

    const unchecked = OPERATIONS.map((o) => key(o.method, o.path)).filter((k) => !checked.has(k));
    assert.deepEqual(unchecked, []);
  });

  test('docs/api.md describes every operation', () => {
    const text = readFileSync(DOC_PATH, 'utf8');
    for (const o of OPERATIONS) {
      assert.ok(
        text.includes(`${o.method.toUpperCase()} ${o.path}`),
        `docs/api.md mentions ${key(o.method, o.path)}`,
      );
    }
  });

  test('the document is built once and is valid JSON', () => {
    assert.equal(openApiDocument(), openApiDocument());
    assert.doesNotThrow(() => JSON.parse(JSON.stringify(openApiDocument())));
  });
});
