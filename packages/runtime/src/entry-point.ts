import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { ConfigError } from "./config.ts";

/** True when the module at `moduleUrl` is the program being run (not imported by a test or another module). */
export function isEntryPoint(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === moduleUrl;
  } catch {
    return false;
  }
}

/**
 * Runs a service's start function as the program. A configuration problem prints one line naming every
 * bad variable and exits 1; any other startup failure prints its error and exits 1.
 */
export async function runMain(name: string, start: () => Promise<unknown>): Promise<void> {
  // `main migrate`: apply the database migrations and exit (a Kubernetes Job runs the image this way).
  if (process.argv[2] === "migrate") process.env.MIGRATIONS = "only";
  try {
    await start();
  } catch (err) {
    if ((err as Error).name === "MigrationsApplied") {
      console.log((err as Error).message);
      process.exit(0);
    }
    if (err instanceof ConfigError) console.error(`${name}: ${err.message}`);
    else console.error(`${name}: failed to start:`, err);
    process.exit(1);
  }
}
