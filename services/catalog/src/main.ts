import { fileURLToPath } from "node:url";
import { openDatabase } from "@dispatch/db";
import {
  createLogger,
  currentCall,
  isEntryPoint,
  listenOn,
  runMain,
  type Server,
  serve,
} from "@dispatch/runtime";
import { catalogConfig } from "./config.ts";
import { Catalog } from "./domain/use-cases.ts";
import { catalogRpc } from "./rpc.ts";
import { PgCatalogRepository } from "./store/catalog-repository.ts";
import { schema } from "./store/schema.ts";
import { seedDemoData } from "./store/seed.ts";

/** Wiring only: config -> db -> domain -> serve(). Tests call it with their own env. */
export async function startCatalog(
  env: NodeJS.ProcessEnv = process.env,
  handleSignals = false,
): Promise<Server> {
  const config = catalogConfig(env);
  const logger = createLogger({ name: "catalog", level: config.LOG_LEVEL });
  const database = await openDatabase({
    service: "catalog",
    url: config.DATABASE_URL,
    dataDir: config.DATA_DIR ?? ".data/catalog",
    schema,
    migrationsFolder: fileURLToPath(new URL("../migrations", import.meta.url)),
    signal: () => currentCall()?.signal,
  });
  if (config.SEED_DEMO_DATA) {
    const written = await seedDemoData(database.db);
    if (written.restaurants + written.menuItems > 0) logger.info(written, "demo data written");
  }

  return serve({
    name: "catalog",
    services: [catalogRpc(new Catalog(new PgCatalogRepository(database.db)))],
    port: listenOn("PORT", config.PORT, env),
    maxInFlight: config.MAX_IN_FLIGHT,
    shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
    adminPort: listenOn("ADMIN_PORT", config.ADMIN_PORT, env),
    logger,
    readiness: () => database.ping(),
    handleSignals,
    onShutdown: () => database.close(),
  });
}

if (isEntryPoint(import.meta.url)) await runMain("catalog", () => startCatalog(process.env, true));
