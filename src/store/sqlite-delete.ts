// Deleting rows of a SQLite table the two ways the store's lists offer, each in one IMMEDIATE transaction:
// by id (reports delete, the API's DELETE) and the oldest rows matching a filter in batches (reports purge,
// retention). Rows that belong to a deleted one go with it (ON DELETE CASCADE in migrations.ts).
import type Database from 'better-sqlite3';
import type { OldestMatching } from './purge-rules.js';
import { storeInvalid } from './types.js';

/** Deletes the rows of `table` with these ids; returns the ids that existed. */
export function deleteByIds(db: Database.Database, table: string, ids: number[]): number[] {
  if (!Array.isArray(ids) || ids.some((id) => !Number.isSafeInteger(id))) {
    throw storeInvalid('id: report ids must be whole numbers');
  }
  const unique = [...new Set(ids)];
  return db
    .transaction(() => {
      const remove = db.prepare<[number], number>(`DELETE FROM ${table} WHERE id = ? RETURNING id`).pluck();
      return unique.filter((id) => remove.get(id) !== undefined);
    })
    .immediate();
}

/** Deletes up to `limit` of the oldest matching rows; `remaining` is how many still match afterwards. */
export function deleteOldest(
  db: Database.Database,
  { table, where, params, oldestBy, limit }: OldestMatching,
): { deleted: number; remaining: number } {
  const matching = where.join(' AND ');
  return db
    .transaction(() => {
      const deleted =
        limit === 0
          ? 0
          : db
              .prepare(
                `DELETE FROM ${table} WHERE id IN
                   (SELECT id FROM ${table} WHERE ${matching} ORDER BY ${oldestBy}, id LIMIT ?)`,
              )
              .run(...params, limit).changes;
      const remaining = db
        .prepare<unknown[], number>(`SELECT count(*) FROM ${table} WHERE ${matching}`)
        .pluck()
        .get(...params)!;
      return { deleted, remaining };
    })
    .immediate();
}
