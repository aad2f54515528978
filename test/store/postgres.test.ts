// The PostgreSQL store (src/store/postgres.ts) against a real PostgreSQL 15 on loopback (test/lab/postgres.ts):
// the store contract (test/store/contract.ts) on a fresh database per test, plus what only several
// instances on one database show: migrations applied once, the same report saved by two instances at
// once stored once, the login throttle, the token cap and the password change holding across instances,
// connections ended by the server, NUL in report text.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import pg from 'pg';
import { openPostgresStore } from '../../src/store/postgres.js';
import { PG_MIGRATIONS } from '../../src/store/postgres-migrations.js';
import { fromPgText, isUnreachable, pgText, storeFailure } from '../../src/store/postgres-sql.js';
import { MAX_API_TOKENS } from '../../src/store/sqlite.js';
import { ADMIN_PASSWORD_SETTING, type Store, StoreError } from '../../src/store/types.js';
import { eventually } from '../fixtures/serve/helpers.js';
import { freePort } from '../helpers/ports.js';
import { rejectsWithStoreError } from '../helpers/store.js';
import { type LabPostgres, startPostgres } from '../lab/postgres.js';
import { newReport, policy, report, type StoreFixture, settings, storeContract, T0 } from './contract.js';
import {
  dmarcContract,
  input as dmarcInput,
  report as dmarcReport,
  row as dmarcRow,
} from './contract-dmarc.js';
import { alert, monitorContract, run } from './contract-monitor.js';

let lab: LabPostgres;
let databases = 0;
/** A new, empty database on the lab server. */
const freshDatabase = () => lab.createDatabase(`mxguard_${++databases}`);

before(async () => {
  lab = await startPostgres();
});
after(async () => {
  await lab?.stop();
});

storeContract('postgres', async () => openPostgresStore(await freshDatabase()));

/** pg's type id of BIGINT: raw queries read it as a number, as the store does. */
const INT8_OID = 20;

/** The contract parts' fixture on a new database: another instance is another store on it (a second pool). */
async function postgresFixture(): Promise<StoreFixture & { url: string }> {
  const url = await freshDatabase();
  const store = await openPostgresStore(url);
  const others: Store[] = [];
  return {
    store,
    url,
    another: async () => {
      const other = await openPostgresStore(url);
      others.push(other);
      return other;
    },
    rows: (table, where) =>
      withClient(url, async (c) =>
        Number(
          (await c.query(`SELECT count(*) AS n FROM ${table}${where === undefined ? '' : ` WHERE ${where}`}`))
            .rows[0].n,
        ),
      ),
    column: (sql) =>
      withClient(url, async (c) => {
        const result = await c.query({ text: sql, rowMode: 'array' });
        const int8 = result.fields[0]?.dataTypeID === INT8_OID;
        return result.rows.map((row: unknown[]) => (int8 ? Number(row[0]) : fromPgText(String(row[0]))));
      }),
    close: async () => {
      await Promise.all([store, ...others].map((s) => s.close()));
    },
  };
}

monitorContract('postgres', postgresFixture);
dmarcContract('postgres', postgresFixture);

/** Opens `n` stores on one new database at the same time, as `n` serve instances starting together. */
async function instances(n: number): Promise<{ url: string; stores: Store[] }> {
  const url = await freshDatabase();
  const stores = await Promise.all(Array.from({ length: n }, () => openPostgresStore(url)));
  return { url, stores };
}

async function closeAll(stores: Store[]): Promise<void> {
  await Promise.all(stores.map((s) => s.close()));
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

describe('opening and migrations (PostgreSQL)', () => {
  it('several instances opening a new database at once apply each migration once', async () => {
    const { url, stores } = await instances(4);
    try {
      await stores[0]!.addDomain(
        'example.com',
        {
          mode: 'testing',
          mx: ['mx.example.com'],
          maxAge: 86400,
          rua: ['mailto:t@example.com'],
        },
        T0,
      );
      assert.equal((await stores[3]!.getDomain('example.com'))?.policyId, '20240501100000');
      const versions = await withClient(
        url,
        async (c) => (await c.query('SELECT version FROM mxguard_schema')).rows,
      );
      assert.deepEqual(versions, [{ version: PG_MIGRATIONS.length }]);
    } finally {
      await closeAll(stores);
    }
  });

  it('refuses a database from a newer mxguard', async () => {
    const url = await freshDatabase();
    await (await openPostgresStore(url)).close();
    await withClient(url, (c) => c.query('UPDATE mxguard_schema SET version = version + 1'));
    await rejectsWithStoreError(openPostgresStore(url), 'STORE_IO', /newer than this mxguard/);
  });

  it('refuses a server that does not answer, naming it without the password', async () => {
    const url = `postgres://mxguard:s3cret@127.0.0.1:${lab.port}/no_such_database`;
    await rejectsWithStoreError(
      openPostgresStore(url),
      'STORE_IO',
      /^postgres:\/\/mxguard:\*\*\*@127\.0\.0\.1:\d+\/no_such_database: cannot open/,
    );
    await assert.rejects(openPostgresStore(url), (err: Error) => !err.message.includes('s3cret'));
  });

  it('commits with synchronous_commit on', async () => {
    const [store] = (await instances(1)).stores;
    try {
      assert.deepEqual(await store!.durability(), { journalMode: 'postgresql-wal', synchronous: 'ON' });
    } finally {
      await store!.close();
    }
  });
});

describe('connection loss', () => {
  it("the server ending the store's connections (restart, failover) crashes nothing: calls fail as STORE_UNAVAILABLE at most, then reconnect", async () => {
    const { url, stores } = await instances(1);
    const store = stores[0]!;
    try {
      await store.setSetting('k', 'v');
      const name = new URL(url).pathname.slice(1);
      // The server ends every session of the database (as a restart or a failover does).
      const ended = await withClient(
        lab.adminUrl,
        async (admin) =>
          (
            await admin.query(
              'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
              [name],
            )
          ).rows.length,
      );
      assert.ok(ended > 0, 'the store had a connection open');
      const outcomes: string[] = [];
      for (let attempt = 0; attempt < 3 && outcomes.at(-1) !== 'v'; attempt++) {
        try {
          outcomes.push(String(await store.getSetting('k')));
        } catch (err) {
          assert.ok(err instanceof StoreError, String(err));
          assert.equal(err.code, 'STORE_UNAVAILABLE');
          outcomes.push(err.code);
        }
      }
      assert.equal(outcomes.at(-1), 'v', `answers after the loss: ${outcomes.join(', ')}`);
    } finally {
      await store.close();
    }
  });

  it('a database that is down answers STORE_UNAVAILABLE, stores nothing half, and the pool reconnects when it is back', async () => {
    const { stores } = await instances(1);
    const store = stores[0]!;
    try {
      await store.setSetting('k', 'v');
      await store.addDomain('example.com', settings, T0);
      await lab.restart(async () => {
        await rejectsWithStoreError(store.getSetting('k'), 'STORE_UNAVAILABLE', /127\.0\.0\.1/);
        await rejectsWithStoreError(
          store.saveReport(
            newReport(report('down', '2024-05-01T00:00:00Z', [policy('example.com', 1, 0)])),
            T0,
          ),
          'STORE_UNAVAILABLE',
        );
        await rejectsWithStoreError(
          store.recordCheck(
            { run: run(T0), open: [{ alert: alert('down'), deliveries: [] }], resolve: [] },
            T0,
          ),
          'STORE_UNAVAILABLE',
        );
      });
      const outcomes: string[] = [];
      for (let attempt = 0; attempt < 3 && outcomes.at(-1) !== 'v'; attempt++) {
        try {
          outcomes.push(String(await store.getSetting('k')));
        } catch (err) {
          assert.ok(err instanceof StoreError, String(err));
          outcomes.push(err.code);
        }
      }
      assert.deepEqual(
        outcomes.filter((o) => o !== 'STORE_UNAVAILABLE'),
        ['v'],
        `answers once the server is back: ${outcomes.join(', ')}`,
      );
      assert.equal((await store.listReports()).total, 0, 'the report refused during the outage is not there');
      assert.deepEqual(await store.openAlerts(), []);
      assert.equal((await store.listCheckRuns('example.com')).total, 0);
    } finally {
      await store.close();
    }
  });

  it('nothing listening on the port: opening answers STORE_UNAVAILABLE naming the database', async () => {
    const port = await freePort();
    await rejectsWithStoreError(
      openPostgresStore(`postgres://mxguard:s3cret@127.0.0.1:${port}/mxguard`),
      'STORE_UNAVAILABLE',
      new RegExp(`^postgres://mxguard:\\*\\*\\*@127\\.0\\.0\\.1:${port}/mxguard: cannot open the database`),
    );
  });

  it('tells a database out of reach from one that refused the request', () => {
    const failure = (fields: Record<string, unknown>, message = 'boom') =>
      Object.assign(new Error(message), fields);
    const unreachable = [
      failure({ code: 'ECONNREFUSED' }),
      failure({ code: 'ECONNRESET' }),
      failure({ code: 'ETIMEDOUT' }),
      failure({ code: 'ENOTFOUND' }),
      failure({ code: '08006' }),
      failure({ code: '08001' }),
      failure({ code: '57P01' }),
      failure({ code: '57P02' }),
      failure({ code: '57P03' }),
      failure({}, 'Connection terminated unexpectedly'),
      failure({}, 'timeout exceeded when trying to connect'),
      new AggregateError([failure({ code: 'ECONNREFUSED' })], ''),
    ];
    const refused = [
      failure({ code: '23505' }),
      failure({ code: '3D000' }),
      failure({ code: '42P01' }),
      failure({ code: '57014' }),
      failure({}, 'syntax error at or near "x"'),
      'not an error',
    ];
    for (const err of unreachable) assert.equal(isUnreachable(err), true, String(err));
    for (const err of refused) assert.equal(isUnreachable(err), false, String(err));
    assert.equal(storeFailure(unreachable[0], 'db').code, 'STORE_UNAVAILABLE');
    assert.equal(storeFailure(refused[0], 'db').code, 'STORE_IO');
  });
});

describe('several instances on one database', () => {
  it('the same reports saved through two instances at once are stored once each', async () => {
    const { stores } = await instances(2);
    try {
      const reports = Array.from({ length: 40 }, (_, i) =>
        newReport(
          report(`same-${i}`, '2024-05-01T00:00:00Z', [
            policy('example.com', 1, 1, [{ resultType: 'x', count: 1 }]),
          ]),
        ),
      );
      const results = await Promise.all(
        reports.flatMap((r) => stores.map((store) => store.saveReport(r, T0))),
      );
      assert.equal(results.filter((r) => r.created).length, 40, 'each report created once');
      for (let i = 0; i < 40; i++) assert.equal(results[2 * i]!.id, results[2 * i + 1]!.id);
      const page = await stores[1]!.listReports({ limit: 100 });
      assert.equal(page.total, 40);
      assert.deepEqual(await stores[0]!.dailyCounts('example.com', '2024-05-01', '2024-05-01'), [
        { day: '2024-05-01', successful: 40, failed: 40 },
      ]);
    } finally {
      await closeAll(stores);
    }
  });

  it('the login throttle counts the attempts of every instance: exactly clientMax get a slot', async () => {
    const { stores } = await instances(3);
    try {
      const limits = { windowMs: 60_000, clientMax: 5, accountMax: 100 };
      const keys = { client: '192.0.2.1', account: 'admin' };
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => stores[i % 3]!.reserveAuthAttempt(keys, limits, T0)),
      );
      assert.equal(results.filter((r) => r.ok).length, 5);
      assert.ok(results.every((r) => r.ok || r.retryAfterMs > 0));
      assert.deepEqual(await stores[2]!.authAttemptAllowed(keys, limits, T0), {
        ok: false,
        retryAfterMs: 60_000,
      });
    } finally {
      await closeAll(stores);
    }
  });

  it('the API token cap holds when instances create tokens at once', async () => {
    const { stores } = await instances(2);
    try {
      const created = await Promise.allSettled(
        Array.from({ length: MAX_API_TOKENS + 20 }, (_, i) =>
          stores[i % 2]!.createApiToken({
            id: `t${i}`,
            name: `token ${i}`,
            hash: `h${i}`,
            createdAt: T0.toISOString(),
          }),
        ),
      );
      assert.equal(created.filter((r) => r.status === 'fulfilled').length, MAX_API_TOKENS);
      assert.equal((await stores[0]!.listApiTokens()).length, MAX_API_TOKENS);
    } finally {
      await closeAll(stores);
    }
  });

  it('a password change through one instance ends sessions and refuses logins checked under the old one', async () => {
    const { stores } = await instances(2);
    const [a, b] = stores as [Store, Store];
    try {
      await a.setAdminPassword('hash-1');
      const expiresAt = new Date(T0.getTime() + 3_600_000);
      assert.equal(await b.createSession({ idHash: 's1', expiresAt }, 'hash-1', T0), true);
      assert.equal(await a.sessionValid('s1', T0), true);
      await b.setAdminPassword('hash-2');
      assert.equal(await a.sessionValid('s1', T0), false);
      assert.equal(await a.createSession({ idHash: 's2', expiresAt }, 'hash-1', T0), false);
      assert.equal(await b.sessionValid('s2', T0), false);
    } finally {
      await closeAll(stores);
    }
  });

  it('a login checked under the old password gets no session when the change commits meanwhile', async () => {
    const { url, stores } = await instances(1);
    const store = stores[0]!;
    try {
      await store.setAdminPassword('hash-1');
      await withClient(url, async (change) => {
        // Another instance's password change, caught between its statements and its commit.
        await change.query('BEGIN');
        await change.query('UPDATE settings SET value = $1 WHERE key = $2', [
          'hash-2',
          ADMIN_PASSWORD_SETTING,
        ]);
        await change.query('DELETE FROM sessions');
        let settled = false;
        const login = store
          .createSession({ idHash: 'late', expiresAt: new Date(T0.getTime() + 3_600_000) }, 'hash-1', T0)
          .finally(() => {
            settled = true;
          });
        // The login either waits for the change's row lock or (without one) has finished.
        await eventually(
          async () =>
            settled || (await change.query('SELECT 1 FROM pg_locks WHERE NOT granted')).rowCount! > 0
              ? true
              : undefined,
          'the login waiting for the password row, or done',
        );
        await change.query('COMMIT');
        assert.equal(await login, false, 'no session under the old password');
      });
      assert.equal(await store.sessionValid('late', T0), false);
    } finally {
      await store.close();
    }
  });

  it('a policy change through one instance is read by the other', async () => {
    const { stores } = await instances(2);
    const [a, b] = stores as [Store, Store];
    try {
      await a.addDomain(
        'example.com',
        { mode: 'testing', mx: ['mx.example.com'], maxAge: 86400, rua: ['mailto:t@example.com'] },
        T0,
      );
      const changed = await b.updateDomain('example.com', { mode: 'enforce' }, T0);
      assert.equal(changed.policyId, '20240501100001', 'the same second twice still increases');
      assert.equal((await a.getDomain('example.com'))?.policyText, changed.policyText);
    } finally {
      await closeAll(stores);
    }
  });
});

describe('one transaction per call (PostgreSQL)', () => {
  /** A trigger that fails the insert of a `table` row matching `when` (a failure half way through a call). */
  const failingTrigger = (table: string, when: string) => `
    CREATE FUNCTION disk_on_fire() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'disk on fire'; END $$;
    CREATE TRIGGER fail_insert BEFORE INSERT ON ${table} FOR EACH ROW WHEN (${when})
      EXECUTE FUNCTION disk_on_fire();`;

  it('a check outcome failing at its last delivery leaves no run and no alert behind', async () => {
    const fixture = await postgresFixture();
    const { store } = fixture;
    try {
      await store.addDomain('example.com', settings, T0);
      const first = await store.recordCheck(
        { run: run(T0), open: [{ alert: alert('old'), deliveries: [] }], resolve: [] },
        T0,
      );
      await withClient(fixture.url, (c) =>
        c.query(failingTrigger('deliveries', "NEW.event LIKE '%alert.resolved%'")),
      );
      const webhook = (event: 'alert.opened' | 'alert.resolved') => ({
        channel: 'webhook' as const,
        target: 'https://hooks.example/x',
        event: {
          event,
          domain: 'example.com',
          code: 'old',
          severity: 'fail' as const,
          message: 'm',
          openedAt: T0.toISOString(),
        },
      });
      await rejectsWithStoreError(
        store.recordCheck(
          {
            run: run(T0),
            open: [{ alert: alert('new'), deliveries: [webhook('alert.opened')] }],
            resolve: [{ alertId: first.opened[0]!, deliveries: [webhook('alert.resolved')] }],
          },
          T0,
        ),
        'STORE_IO',
        /disk on fire/,
      );
      assert.equal(await fixture.rows('check_runs'), 1, 'only the first run');
      assert.equal(await fixture.rows('alerts'), 1);
      assert.equal(await fixture.rows('alerts', 'resolved_at IS NULL'), 1, 'the old alert is still open');
      assert.equal(await fixture.rows('deliveries'), 0);
    } finally {
      await fixture.close();
    }
  });

  it('a DMARC report failing at its last row is not stored at all', async () => {
    const fixture = await postgresFixture();
    const { store } = fixture;
    try {
      await withClient(fixture.url, (c) =>
        c.query(failingTrigger('dmarc_rows', "NEW.source_ip = '192.0.2.9'")),
      );
      const r = dmarcReport('half', { records: [dmarcRow('192.0.2.1', 3), dmarcRow('192.0.2.9', 4)] });
      await rejectsWithStoreError(store.saveDmarcReport(dmarcInput(r), T0), 'STORE_IO', /disk on fire/);
      assert.equal(await fixture.rows('dmarc_reports'), 0);
      assert.equal(await fixture.rows('dmarc_rows'), 0);
      assert.equal((await store.listDmarcReports()).total, 0);
    } finally {
      await fixture.close();
    }
  });
});

describe('text PostgreSQL cannot hold (NUL)', () => {
  it('pgText and fromPgText round-trip any string, and leave text without NUL and U+FFFE unchanged', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', '\u0000', '\uFFFE', '0', 'é') }), (s) => {
        assert.equal(fromPgText(pgText(s)), s);
        assert.ok(!pgText(s).includes('\u0000'));
      }),
    );
    fc.assert(
      fc.property(fc.string(), (s) => {
        fc.pre(!/[\u0000\uFFFE]/.test(s));
        assert.equal(pgText(s), s);
      }),
    );
  });

  it('a fetch log entry and a rejected input with NUL come back as they were', async () => {
    const [store] = (await instances(1)).stores;
    try {
      store!.logFetch({
        at: T0.toISOString(),
        domain: 'example.com',
        clientIp: '192.0.2.1',
        userAgent: 'a\u0000b\uFFFE',
      });
      assert.equal((await store!.listFetches('example.com')).items[0]?.userAgent, 'a\u0000b\uFFFE');
      await store!.saveRejected({ source: 'https', reason: 'bad\u0000', submitter: '\u0000', size: 1 }, T0);
      const [rejected] = (await store!.listRejected()).items;
      assert.deepEqual([rejected?.reason, rejected?.submitter], ['bad\u0000', '\u0000']);
    } finally {
      await store!.close();
    }
  });
});
