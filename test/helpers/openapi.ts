// The served OpenAPI document of the API as the tests read it: its shape, the operations it lists,
// and zod schemas made from its response schemas (z.fromJSONSchema, references resolved).
import { z } from 'zod';

/** An operation's key as `GET /api/domains/{name}`. */
export const key = (method: string, path: string) => `${method.toUpperCase()} ${path}`;

export type JsonObject = Record<string, unknown>;
export interface OperationDoc {
  security?: unknown[];
  parameters?: { name: string; description?: string }[];
  responses: Record<string, { content?: { 'application/json': { schema: JsonObject } } }>;
}
export interface OpenApiDoc {
  openapi: string;
  info: { version: string };
  components: { schemas: Record<string, JsonObject> };
  paths: Record<string, Record<string, OperationDoc>>;
}

/** A zod schema for `schema` of the document, its component references resolved in the document. */
export function fromDocument(doc: OpenApiDoc, schema: JsonObject): z.ZodType {
  const root = JSON.parse(
    JSON.stringify({ ...schema, $defs: doc.components.schemas }).replaceAll(
      '"#/components/schemas/',
      '"#/$defs/',
    ),
  );
  return z.fromJSONSchema(root);
}

/** The documented operations as `GET /api/domains/{name}`. */
export const operationsOf = (doc: OpenApiDoc) =>
  Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((m) => key(m, path)));
