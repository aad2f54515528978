// Reports about domains that are not configured in the API (issue 15): GET /api/other-domains lists their
// policy domains with counts of both kinds and the intake.otherDomains setting; the TLS-RPT and DMARC report
// lists take otherDomains=true and noPolicyDomain=true. Real SQLite store, reports taken in by the import route.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openTestApp, reportJson, type TestApp } from '../helpers/browser.js';
import { dmarcReport } from '../helpers/dmarc.js';

const NOW = new Date('2026-05-10T12:00:00Z');

describe('other domains in the API', () => {
  let t: TestApp;
  let auth: { authorization: string };
  const get = async (url: string, status = 200) => {
    const res = await t.app.inject({ url, headers: auth });
    assert.equal(res.statusCode, status, `${url}: ${res.body}`);
    return res.json();
  };
  const importFile = async (body: string, contentType: string) => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/reports/import',
      headers: { ...auth, 'content-type': contentType },
      payload: body,
    });
    assert.equal(res.statusCode, 200, res.body);
  };
  const dmarcXml = (reportId: string, domain: string) => {
    const r = dmarcReport({
      organization: 'google.com',
      reportId,
      domain,
      day: '2026-05-08',
      rows: [{ sourceIp: '192.0.2.1', count: 4 }],
    });
    return `<?xml version="1.0"?><feedback><report_metadata><org_name>${r.organization}</org_name>
      <email>${r.email}</email><report_id>${reportId}</report_id>
      <date_range><begin>${Date.parse(r.begin) / 1000}</begin><end>${Date.parse(r.end) / 1000 + 1}</end></date_range>
      </report_metadata><policy_published><domain>${domain}</domain><p>none</p></policy_published>
      <record><row><source_ip>192.0.2.1</source_ip><count>4</count><policy_evaluated><disposition>none</disposition>
      <dkim>pass</dkim><spf>pass</spf></policy_evaluated></row><identifiers><header_from>${domain || 'x.example'}</header_from></identifiers>
      <auth_results><spf><domain>${domain || 'x.example'}</domain><result>pass</result></spf></auth_results></record></feedback>`;
  };

  before(async () => {
    t = await openTestApp({ start: NOW });
    auth = { authorization: `Bearer ${t.password}` };
    const add = await t.app.inject({
      method: 'POST',
      url: '/api/domains',
      headers: auth,
      payload: { name: 'ours.example', mx: ['mx.ours.example'] },
    });
    assert.equal(add.statusCode, 201, add.body);
    const tls = (reportId: string, domain: string) =>
      importFile(
        reportJson({ organization: 'Sender Inc', reportId, domain, day: '2026-05-08', successful: 3 }),
        'application/tlsrpt+json',
      );
    await tls('t-ours', 'ours.example');
    await tls('t-stranger', 'stranger.example');
    await tls('t-bare', '');
    await importFile(dmarcXml('d-ours', 'ours.example'), 'application/octet-stream');
    await importFile(dmarcXml('d-stranger', 'stranger.example'), 'application/octet-stream');
  });
  after(() => t.close());

  it('GET /api/other-domains: each domain that is not configured with its reports, and the setting', async () => {
    const body = await get('/api/other-domains');
    assert.equal(body.setting, 'keep');
    assert.equal(body.total, 2);
    assert.deepEqual(
      body.domains.map((d: { domain: string; tlsrptReports: number; dmarcReports: number }) => [
        d.domain,
        d.tlsrptReports,
        d.dmarcReports,
      ]),
      [
        ['', 1, 0],
        ['stranger.example', 1, 1],
      ],
    );
    t.ctx.config.intake.otherDomains = 'refuse';
    try {
      assert.equal((await get('/api/other-domains')).setting, 'refuse');
    } finally {
      delete t.ctx.config.intake.otherDomains;
    }
  });

  it('the report lists: otherDomains=true and noPolicyDomain=true', async () => {
    const ids = (body: { reports: { reportId: string }[] }) => body.reports.map((r) => r.reportId).sort();
    assert.deepEqual(ids(await get('/api/reports?otherDomains=true')), ['t-bare', 't-stranger']);
    assert.deepEqual(ids(await get('/api/reports?noPolicyDomain=true')), ['t-bare']);
    assert.deepEqual(ids(await get('/api/dmarc/reports?otherDomains=true')), ['d-stranger']);
    assert.deepEqual(ids(await get('/api/reports')), ['t-bare', 't-ours', 't-stranger']);
  });

  it('refuses a filter it cannot apply with 400', async () => {
    await get('/api/reports?otherDomains=false', 400);
    await get('/api/dmarc/reports?noPolicyDomain=true&domain=ours.example', 400);
    await get('/api/reports?noPolicyDomain=true&domain=ours.example', 400);
  });
});
