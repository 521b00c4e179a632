// First: it sizes libuv's thread pool before any module can start it.
import "./hash-threads.ts";
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
import { identityConfig } from "./config.ts";
import { Identity } from "./domain/use-cases.ts";
import { identityRpc } from "./rpc.ts";
import { PgIdentityRepository } from "./store/identity-repository.ts";
import { schema } from "./store/schema.ts";
import { JoseTokenSigner } from "./token-signer.ts";

/** Wiring only: config -> db -> keys -> domain -> serve(). */
export async function startIdentity(
  env: NodeJS.ProcessEnv = process.env,
  handleSignals = false,
): Promise<Server> {
  const config = identityConfig(env);
  const logger = createLogger({ name: "identity", level: config.LOG_LEVEL });
  const database = await openDatabase({
    service: "identity",
    url: config.DATABASE_URL,
    dataDir: config.DATA_DIR ?? ".data/identity",
    schema,
    migrationsFolder: fileURLToPath(new URL("../migrations", import.meta.url)),
    signal: () => currentCall()?.signal,
  });
  const signer = await JoseTokenSigner.load(database.db, config.JWT_PRIVATE_KEYS);
  const identity = new Identity(new PgIdentityRepository(database.db), signer, {
    accessSeconds: config.ACCESS_TOKEN_TTL_S,
    refreshSeconds: config.REFRESH_TOKEN_TTL_S,
  });
  return serve({
    name: "identity",
    services: [identityRpc(identity)],
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

if (isEntryPoint(import.meta.url)) await runMain("identity", () => startIdentity(process.env, true));
