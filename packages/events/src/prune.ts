import { type AnyDb, rowsOf } from "@dispatch/db";
import { sql } from "drizzle-orm";

/**
 * Rows deleted per statement, so that no one statement holds many row locks or runs long (2,000: 60 ms
 * cold on PostgreSQL here, 14 ms warm), and statements per call: a backlog (a first start with a
 * retention on a table that kept every row) is worked off 50,000 rows a call, not in one go.
 */
export const PRUNE_BATCH = 2000;
export const PRUNE_MAX_BATCHES = 25;

/**
 * Deletes the rows of `table` whose `column` is older than `retentionMs`, oldest first through an index
 * on that column, PRUNE_BATCH a statement and at most PRUNE_MAX_BATCHES statements; returns how many.
 * Rows another process is deleting or holds are skipped, not waited for. Table and column names are
 * the callers' constants, never input.
 */
export async function deleteOlderThan(
  db: AnyDb,
  target: { table: string; key: string; column: string },
  retentionMs: number,
): Promise<number> {
  const table = sql.raw(`"${target.table}"`);
  const key = sql.raw(`"${target.key}"`);
  const column = sql.raw(`"${target.column}"`);
  let total = 0;
  for (let i = 0; i < PRUNE_MAX_BATCHES; i++) {
    const [row] = rowsOf<{ n: number | string }>(
      await db.execute(sql`
        with gone as (
          delete from ${table} where ${key} in (
            select ${key} from ${table}
            where ${column} < now() - make_interval(secs => ${retentionMs / 1000})
            order by ${column}
            limit ${PRUNE_BATCH}
            for update skip locked
          )
          returning 1
        )
        select count(*) as n from gone`),
    );
    const n = Number(row?.n ?? 0);
    total += n;
    if (n < PRUNE_BATCH) break;
  }
  return total;
}
