// Every route of the JSON API, in the order of the OpenAPI document: api.ts registers this list and
// the document (GET /api/openapi.json, src/server/openapi.ts) is made from it.
import { openApiDocument } from '../openapi.js';
import { AUTH_ROUTES } from './auth-routes.js';
import { DMARC_ROUTES } from './dmarc-routes.js';
import { DOMAIN_ROUTES } from './domain-routes.js';
import { MONITOR_ROUTES } from './monitor-routes.js';
import { REPORT_ROUTES } from './report-routes.js';
import { type AnyRoute, defineRoute, type Exchange } from './route.js';
import { OpenApiDocument } from './schemas.js';

const openApiRoute = defineRoute({
  method: 'GET',
  path: '/api/openapi.json',
  summary: 'This OpenAPI document',
  tag: 'auth',
  public: true,
  responses: { 200: { description: 'the OpenAPI 3.1 document', schema: OpenApiDocument } },
}).handle(async () => ({
  status: 200,
  body: openApiDocument(API_ROUTES) as typeof OpenApiDocument._input,
}));

const DECLARED = [
  openApiRoute,
  ...AUTH_ROUTES,
  ...DOMAIN_ROUTES,
  ...REPORT_ROUTES,
  ...DMARC_ROUTES,
  ...MONITOR_ROUTES,
];

export const API_ROUTES: readonly AnyRoute[] = DECLARED;

/**
 * Each operation by `METHOD /api/path` (as in the OpenAPI document): what a client sends (params,
 * query, body) and the answer it gets on success. The dashboard's api() is typed with it.
 */
export type ApiExchanges = {
  [X in (typeof DECLARED)[number] as `${X['method']} ${X['path']}`]: Exchange<X>;
};
