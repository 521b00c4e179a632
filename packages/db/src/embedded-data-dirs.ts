#!/usr/bin/env node
/**
 * Creates embedded PGlite data directories for `pnpm start`:
 * `node packages/db/src/embedded-data-dirs.ts <dir>...` initializes every directory that is missing or
 * empty. PGlite's initdb costs ~4 s of CPU on this machine (docs/BENCHMARKS.md, "Start-up and memory"),
 * and five services ran five of them at once on two cores; a fresh cluster is the same files whichever
 * service it is for, so one is initialized and copied to the others, and each service then applies its own
 * migrations as before. Directories that hold anything are left untouched. Runs on Node 24 without a build step.
 */
import { cpSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { pgliteOptions } from "./pglite-options.ts";

/** The directories of `dirs` this call initialized. */
export async function initEmptyDataDirs(dirs: readonly string[]): Promise<string[]> {
  const empty = dirs.filter((d) => !existsSync(d) || readdirSync(d).length === 0);
  const [first, ...rest] = empty;
  if (first === undefined) return [];
  mkdirSync(first, { recursive: true });
  const pg = new PGlite(first, pgliteOptions(PGlite.defaultStartParams));
  await pg.waitReady;
  await pg.close();
  for (const dir of rest) cpSync(first, dir, { recursive: true });
  return empty;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await initEmptyDataDirs(process.argv.slice(2));
}
