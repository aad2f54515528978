// The OpenAPI 3.1 document of the `mxguard serve` JSON API (GET /api/openapi.json, docs/api.md),
// derived from the route declarations (src/server/api/routes.ts) and their zod schemas: the named
// schemas of api/schemas.ts become components, every other schema is written inline. Besides the
// answers a route declares, each operation lists the ones the API gives every route of its kind
// (a 400 for invalid input, 401/429 for authentication, 403/415 for the CSRF rules of api.ts, 503
// STORE_UNAVAILABLE when the database cannot be reached).
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { AnyRoute, Responses } from './api/route.js';
import {
  ApiErrorBody,
  PAGE_LIMIT_MAX,
  REQUEST_SCHEMAS,
  RESPONSE_SCHEMAS,
  StoreUnavailable,
} from './api/schemas.js';

type JsonObject = Record<string, unknown>;
type Io = 'input' | 'output';

const COMPONENTS = '#/components/schemas/';

/** The named schemas of each side: requests as the API reads them, answers as it writes them. */
const NAMED: Record<Io, Record<string, z.ZodType>> = { input: REQUEST_SCHEMAS, output: RESPONSE_SCHEMAS };
const ROOT = '.root';

/** JSON Schemas of `schemas` (by name), named schemas inside them written as references to components. */
function jsonSchemas(schemas: Record<string, z.ZodType>, io: Io): Record<string, JsonObject> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const out: Record<string, JsonObject> = {};
  for (const [id, json] of Object.entries(
    z.toJSONSchema(registry, { uri: (id) => `${COMPONENTS}${id}`, io }).schemas,
  )) {
    const { $schema: _s, $id: _i, ...rest } = json as JsonObject;
    out[id] = rest;
  }
  return out;
}

function componentSchemas(): JsonObject {
  return { ...jsonSchemas(NAMED.input, 'input'), ...jsonSchemas(NAMED.output, 'output') };
}

/** `schema` as JSON Schema: a named one as a reference to its component, and so are the named ones in it. */
function schemaObject(schema: z.ZodType, io: Io): JsonObject {
  const name = Object.keys(NAMED[io]).find((id) => NAMED[io][id] === schema);
  if (name !== undefined) return { $ref: `${COMPONENTS}${name}` };
  return jsonSchemas({ ...NAMED[io], [ROOT]: schema }, io)[ROOT]!;
}

/** The path parameters or query of a route, one OpenAPI parameter per property. */
function parameters(schema: z.ZodObject, where: 'path' | 'query'): JsonObject[] {
  const json = schemaObject(schema, 'input') as {
    properties: Record<string, JsonObject>;
    required?: string[];
  };
  const out: JsonObject[] = [];
  for (const [name, property] of Object.entries(json.properties)) {
    const { description, ...propertySchema } = property;
    if ('not' in propertySchema) continue; // z.never(): a parameter that is refused (`offset`)
    const required = where === 'path' || (json.required ?? []).includes(name);
    out.push({ name, in: where, ...(required ? { required } : {}), description, schema: propertySchema });
  }
  return out;
}

const error = (description: string) => ({ description, schema: ApiErrorBody });

/**
 * Every answer of `route`: the ones it declares, and before them the ones the API gives each route of
 * its kind (api.ts: input validation, the authentication hook, the CSRF rules, fastify's body limit).
 */
export function documentedResponses(route: AnyRoute): Responses {
  const common: Responses = {};
  if (route.query || route.body) common[400] = error('invalid request (issues lists each problem)');
  if (!route.public) {
    common[401] = error('not logged in (WWW-Authenticate: Bearer)');
    common[429] = error(
      'the bearer secret is a password, and this client address made too many failed password attempts (Retry-After)',
    );
  }
  if (route.method !== 'GET') common[403] = error('cross-site request (an Origin of another host)');
  if (route.method === 'POST' || route.method === 'PATCH') {
    common[415] = error(
      route.raw
        ? `Content-Type is not one of ${route.raw.types.join(', ')}`
        : 'Content-Type is not application/json',
    );
  }
  if (route.body) common[413] = error('the JSON body is larger than 1 MiB');
  const all: Responses = { ...common, ...route.responses };
  // Any route may find the database unreachable (api.ts, store-unavailable.ts).
  const own = route.responses[503];
  all[503] = {
    description: `${own ? `${own.description}; or ` : ''}the database cannot be reached (code STORE_UNAVAILABLE, Retry-After)`,
    schema: own?.schema ? z.union([own.schema, StoreUnavailable]) : StoreUnavailable,
  };
  // Integer keys: Object.entries lists them in ascending order.
  return all;
}

function requestBody(route: AnyRoute): JsonObject | undefined {
  if (route.body) {
    return { required: true, content: { 'application/json': { schema: schemaObject(route.body, 'input') } } };
  }
  if (!route.raw) return undefined;
  const content: JsonObject = {};
  for (const type of route.raw.types) content[type] = { schema: { type: 'string', format: 'binary' } };
  return { required: true, description: route.raw.description, content };
}

/** getDomainsNameFetches for GET /api/domains/{name}/fetches. */
export function operationId(route: AnyRoute): string {
  return `${route.method.toLowerCase()}${route.path
    .replace(/^\/api/, '')
    .replace(/[{}]/g, '')
    .replace(/[^a-zA-Z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`;
}

function operationObject(route: AnyRoute): JsonObject {
  const responses: JsonObject = {};
  for (const [status, r] of Object.entries(documentedResponses(route))) {
    responses[status] = {
      description: r.description,
      ...(r.schema ? { content: { 'application/json': { schema: schemaObject(r.schema, 'output') } } } : {}),
      ...(r.mediaType ? { content: { [r.mediaType]: { schema: { type: 'string' } } } } : {}),
    };
  }
  const params = [
    ...(route.params ? parameters(route.params, 'path') : []),
    ...(route.query ? parameters(route.query, 'query') : []),
  ];
  const body = requestBody(route);
  return {
    summary: route.summary,
    tags: [route.tag],
    operationId: operationId(route),
    ...(route.public ? { security: [] } : {}),
    ...(params.length > 0 ? { parameters: params } : {}),
    ...(body ? { requestBody: body } : {}),
    responses,
  };
}

/** package.json sits two levels up from both src/server/ and dist/server/. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: string;
  };
  return pkg.version ?? '0.0.0';
}

const built = new WeakMap<readonly AnyRoute[], JsonObject>();

/** The OpenAPI 3.1 document of `routes` (built once per list). */
export function openApiDocument(routes: readonly AnyRoute[]): JsonObject {
  const done = built.get(routes);
  if (done) return done;
  const paths: Record<string, JsonObject> = {};
  for (const route of routes) {
    paths[route.path] ??= {};
    paths[route.path]![route.method.toLowerCase()] = operationObject(route);
  }
  const document = {
    openapi: '3.1.0',
    info: {
      title: 'mxguard serve API',
      version: packageVersion(),
      description:
        'Domains and their MTA-STS policies, the DNS records to publish, TLS-RPT reports and the policy fetch log. ' +
        'Authenticate with the session cookie from POST /api/login, or with Authorization: Bearer <admin password or API token>. ' +
        'Requests that change state must send Content-Type: application/json (CSRF protection); report values are ' +
        `attacker-controlled text and are returned verbatim. Lists come in pages of at most ${PAGE_LIMIT_MAX} items ` +
        '(limit, cursor; nextCursor is null on the last page). A Host header that is not an admin host name gets ' +
        '421 Misdirected Request (docs/api.md).',
    },
    servers: [{ url: '/' }],
    tags: [
      { name: 'auth', description: 'logging in, sessions, the admin password' },
      { name: 'tokens', description: 'API tokens for scripts' },
      { name: 'domains', description: 'domains, policies, DNS records, the policy fetch log' },
      { name: 'reports', description: 'TLS-RPT reports and statistics' },
      {
        name: 'monitoring',
        description: 'checks of the watched domains, their history, alerts and notifications',
      },
    ],
    security: [{ sessionCookie: [] }, { bearer: [] }],
    components: {
      securitySchemes: {
        sessionCookie: { type: 'apiKey', in: 'cookie', name: 'mxguard_session' },
        bearer: { type: 'http', scheme: 'bearer', description: 'the admin password or an API token' },
      },
      schemas: componentSchemas(),
    },
    paths,
  };
  built.set(routes, document);
  return document;
}
