// The one documented answer of the API that only a legacy row can provoke: GET /api/reports/{id} of a
// report stored larger than REPORT_DETAIL_MAX_BYTES (an older mxguard, before report caps:
// test/helpers/legacy-reports.ts) is 413, a status the OpenAPI document declares, with a body valid
// against the document's schema. The other operations: api-openapi.test.ts. SQLite only: that era
// never existed on PostgreSQL (test/postgres-pass.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { REPORT_DETAIL_MAX_BYTES } from '../../src/store/paging.js';
import { openTestApp, type TestApp } from '../helpers/browser.js';
import { insertLegacyReports } from '../helpers/legacy-reports.js';
import { fromDocument, type OpenApiDoc } from '../helpers/openapi.js';

describe('OpenAPI document: a report stored too large to show', () => {
  let t: TestApp;
  before(async () => {
    t = await openTestApp({ start: new Date('2026-05-10T08:00:00Z') });
  });
  after(() => t.close());

  test('GET /api/reports/{id} of a giant legacy report: 413, documented, its body valid against the document', async () => {
    const doc: OpenApiDoc = (await t.app.inject({ url: '/api/openapi.json' })).json();
    const [giant] = insertLegacyReports(t.dataDir, [
      {
        organization: `Giant ${'G'.repeat(REPORT_DETAIL_MAX_BYTES)}`,
        reportId: 'giant-1',
        start: '2026-05-02T00:00:00Z',
        domain: 'example.com',
      },
    ]);
    const res = await t.app.inject({
      url: `/api/reports/${giant}`,
      headers: { authorization: `Bearer ${t.password}` },
    });
    assert.equal(res.statusCode, 413, res.body.slice(0, 300));
    const documented = doc.paths['/api/reports/{id}']?.get?.responses['413'];
    assert.ok(documented, 'GET /api/reports/{id}: status 413 is documented');
    const schema = documented.content?.['application/json'].schema;
    assert.ok(schema, 'the 413 answer has a documented JSON body');
    const parsed = fromDocument(doc, schema).safeParse(res.json());
    assert.ok(parsed.success, `${parsed.error?.message} in ${res.body.slice(0, 300)}`);
  });
});
