// Deleting rows of a PostgreSQL table the two ways the store's lists offer (as sqlite-delete.ts for
// SQLite), each inside the caller's transaction: by id (reports delete, the API's DELETE) and the oldest
// rows matching a filter in batches (reports purge, retention). Rows that belong to a deleted one go with
// it (ON DELETE CASCADE in postgres-migrations.ts).
import type pg from 'pg';
import { countOf, query } from './postgres-sql.js';
import type { OldestMatching } from './purge-rules.js';
import { storeInvalid } from './types.js';

/** The ids of a delete-by-id call, checked and without repeats. */
export function checkedIds(ids: unknown): number[] {
  if (!Array.isArray(ids) || ids.some((id) => !Number.isSafeInteger(id))) {
    throw storeInvalid('id: report ids must be whole numbers');
  }
  return [...new Set(ids as number[])];
}

/** Deletes the rows of `table` with these ids (checkedIds); returns the ids that existed, in their order. */
export async function deleteByIds(db: pg.PoolClient, table: string, ids: number[]): Promise<number[]> {
  const deleted = await query<{ id: number }>(
    db,
    `DELETE FROM ${table} WHERE id = ANY(?::bigint[]) RETURNING id`,
    [ids],
  );
  const gone = new Set(deleted.map((row) => row.id));
  return ids.filter((id) => gone.has(id));
}

/** Deletes up to `limit` of the oldest matching rows; `remaining` is how many still match afterwards. */
export async function deleteOldest(
  db: pg.PoolClient,
  { table, where, params, oldestBy, limit }: OldestMatching,
): Promise<{ deleted: number; remaining: number }> {
  const matching = where.join(' AND ');
  const deleted =
    limit === 0
      ? 0
      : (
          await query(
            db,
            `DELETE FROM ${table} WHERE id IN
               (SELECT id FROM ${table} WHERE ${matching} ORDER BY ${oldestBy}, id LIMIT ?) RETURNING id`,
            [...params, limit],
          )
        ).length;
  const remaining = await countOf(db, `SELECT count(*) AS n FROM ${table} WHERE ${matching}`, params);
  return { deleted, remaining };
}
