import { randomBytes } from "node:crypto";
import postgres from "postgres";

export interface TestDatabase {
  /** DATABASE_URL for the service under test; undefined means embedded PGlite (in memory). */
  url: string | undefined;
  /** "postgres" when TEST_DATABASE_URL is set, else "pglite". */
  kind: "postgres" | "pglite";
  drop(): Promise<void>;
}

/**
 * A fresh, empty database for one test suite. With TEST_DATABASE_URL set (CI does), a new database is
 * created on that server and dropped afterwards, so suites running in parallel never share tables;
 * otherwise the service runs on in-memory PGlite. `admin` names another server (the benchmarks' own).
 */
export async function createTestDatabase(
  prefix = "dispatch_test",
  admin = process.env.TEST_DATABASE_URL,
): Promise<TestDatabase> {
  if (!admin) return { url: undefined, kind: "pglite", drop: async () => {} };
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  const sql = postgres(admin, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`create database "${name}"`);
  } finally {
    await sql.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    kind: "postgres",
    async drop() {
      const s = postgres(admin, { max: 1, onnotice: () => {} });
      try {
        await s.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await s.end();
      }
    },
  };
}
