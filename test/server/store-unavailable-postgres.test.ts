// A real database outage under `mxguard serve` (the built CLI) on a lab PostgreSQL 15 that is stopped
// (fast shutdown: its sessions are ended) and started again on the same port while reports are posted:
// during the outage every report is answered 503 STORE_UNAVAILABLE with Retry-After, /healthz says the
// store is unavailable and policies are still served from memory; after the restart the pool
// reconnects by itself and reports are taken again. Every report answered 2xx is stored exactly once,
// and no stored report lacks its policy or failure rows (nothing half-stored).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { POLICY_PATH } from '../../src/mtasts/url.js';
import { openStore } from '../../src/store/index.js';
import { wireReport } from '../fixtures/intake/helpers.js';
import { DOMAIN_SETTINGS, eventually } from '../fixtures/serve/helpers.js';
import { httpRequest, type ListeningServe, startServe } from '../helpers/serve-process.js';
import { type LabPostgres, startPostgres } from '../lab/postgres.js';

const ORGANIZATION = 'Outage Sender';

describe('serve on a PostgreSQL that stops and starts again', () => {
  let lab: LabPostgres;
  let url: string;
  let dir: string;
  let serve: ListeningServe;

  before(async () => {
    lab = await startPostgres();
    url = await lab.createDatabase('serve_outage');
    dir = mkdtempSync(join(tmpdir(), 'mxguard-outage-'));
    const store = await openStore(dir, { database: url });
    try {
      await store.addDomain('example.test', DOMAIN_SETTINGS, new Date());
    } finally {
      await store.close();
    }
    const config = join(dir, 'serve.json');
    writeFileSync(config, JSON.stringify({ intake: { ratePerMinute: 1_000_000 } }));
    serve = await startServe(['--config', config, '--data-dir', dir, '--database', url, '--workers', '1']);
  });
  after(async () => {
    await serve?.stop();
    await lab?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (reportId: string) =>
    httpRequest(serve.port, {
      method: 'POST',
      path: '/tlsrpt',
      json: wireReport({ 'organization-name': ORGANIZATION, 'report-id': reportId }),
    });
  const health = async () => {
    const res = await httpRequest(serve.port, { path: '/healthz' });
    return { status: res.status, store: (JSON.parse(res.body) as { store?: string }).store };
  };

  it('answers 503 during the outage and 2xx after it; every acknowledged report is stored once and whole', async () => {
    assert.equal((await post('before')).status, 201);
    assert.deepEqual(await health(), { status: 200, store: 'ok' });

    // A sender posting new reports one after the other through the whole outage.
    const answers = new Map<string, number>();
    let posting = true;
    const sender = (async () => {
      for (let i = 0; posting; i++) {
        const id = `loop-${i}`;
        // 0: no HTTP answer at all (serve must always answer, so that fails the test below).
        answers.set(
          id,
          await post(id).then(
            (res) => res.status,
            () => 0,
          ),
        );
      }
    })();
    try {
      await outageAndRecovery();
    } catch (err) {
      throw new Error(`${(err as Error).message}\nserve's stderr:\n${serve.stderr().slice(-4000)}`, {
        cause: err,
      });
    } finally {
      posting = false;
      await sender;
    }

    const statuses = [...answers.values()];
    const tally = new Map<number, number>();
    for (const status of statuses) tally.set(status, (tally.get(status) ?? 0) + 1);
    const counts = [...tally].map(([status, n]) => `${n} x ${status}`).join(', ');
    assert.ok(
      statuses.every((s) => s === 201 || s === 503),
      `only 201 or 503: ${counts}`,
    );
    assert.ok(statuses.includes(503), `the sender posted during the outage: ${counts}`);
    const acknowledged = [...answers].filter(([, s]) => s === 201).map(([id]) => id);
    acknowledged.push('before', 'during-1', 'during-2', 'during-3');

    const rows = await reportRows(url);
    for (const id of acknowledged) assert.equal(rows.get(id)?.copies, 1, `report ${id} stored once`);
    for (const [id, row] of rows) {
      assert.deepEqual({ policies: row.policies, failures: row.failures }, { policies: 1, failures: 1 }, id);
    }

    async function outageAndRecovery() {
      await lab.restart(async () => {
        for (const id of ['during-1', 'during-2', 'during-3']) {
          const res = await post(id);
          assert.equal(res.status, 503, res.body);
          assert.equal(JSON.parse(res.body).error.code, 'STORE_UNAVAILABLE');
          assert.ok(Number(res.headers['retry-after']) > 0, 'Retry-After');
          assert.doesNotMatch(res.body, /127\.0\.0\.1|ECONNREFUSED/, 'no driver detail for the client');
        }
        assert.deepEqual(await health(), { status: 503, store: 'unavailable' });
        const policy = await httpRequest(serve.port, {
          path: POLICY_PATH,
          headers: { host: 'mta-sts.example.test' },
        });
        assert.equal(policy.status, 200);
        assert.match(policy.body, /mode: enforce/);
      });

      // The pool reconnects without a restart of serve.
      await eventually(
        async () => ((await health()).status === 200 ? true : undefined),
        '/healthz after restart',
      );
      for (const id of ['during-1', 'during-2', 'during-3']) assert.equal((await post(id)).status, 201, id);
      const seen = answers.size;
      await eventually(() => (answers.size > seen + 3 ? true : undefined), 'more reports after the restart');
    }
  });
});

/** Per report-id of the outage sender: copies stored, and the policy and failure rows of each. */
async function reportRows(
  url: string,
): Promise<Map<string, { copies: number; policies: number; failures: number }>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query<{
      report_id: string;
      copies: string;
      policies: string;
      failures: string;
    }>(
      `SELECT r.report_id, count(DISTINCT r.id) AS copies, count(DISTINCT p.id) AS policies,
              count(DISTINCT f.id) AS failures
         FROM reports r
         LEFT JOIN report_policies p ON p.report = r.id
         LEFT JOIN failures f ON f.policy = p.id
        WHERE r.organization = $1
        GROUP BY r.report_id`,
      [ORGANIZATION],
    );
    return new Map(
      result.rows.map((r) => [
        r.report_id,
        { copies: Number(r.copies), policies: Number(r.policies), failures: Number(r.failures) },
      ]),
    );
  } finally {
    await client.end();
  }
}
