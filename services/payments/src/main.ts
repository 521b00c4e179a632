import { fileURLToPath } from "node:url";
import { openDatabase } from "@dispatch/db";
import { OutboxRelay, subscribersFrom } from "@dispatch/events";
import {
  createLogger,
  currentCall,
  isEntryPoint,
  listenOn,
  runMain,
  type Server,
  serve,
} from "@dispatch/runtime";
import { paymentsConfig } from "./config.ts";
import { Payments } from "./domain/use-cases.ts";
import { PaymentDispatcher } from "./provider/dispatcher.ts";
import { FakeProvider } from "./provider/fake-provider.ts";
import { paymentsRpc } from "./rpc.ts";
import { PgPaymentsRepository } from "./store/payments-repository.ts";
import { schema } from "./store/schema.ts";

/** Wiring only: config -> db -> provider -> domain -> workers -> serve(). */
export async function startPayments(
  env: NodeJS.ProcessEnv = process.env,
  handleSignals = false,
): Promise<Server> {
  const config = paymentsConfig(env);
  const logger = createLogger({ name: "payments", level: config.LOG_LEVEL });
  const database = await openDatabase({
    service: "payments",
    url: config.DATABASE_URL,
    dataDir: config.DATA_DIR ?? ".data/payments",
    schema,
    migrationsFolder: fileURLToPath(new URL("../migrations", import.meta.url)),
    signal: () => currentCall()?.signal,
  });
  const repo = new PgPaymentsRepository(database.db);
  const provider = new FakeProvider({
    webhookUrl: config.WEBHOOK_URL,
    secret: config.WEBHOOK_SECRET,
    delayMs: config.FAKE_PROVIDER_DELAY_MS,
  });
  const dispatcher = new PaymentDispatcher(
    (n, submit) => repo.dispatchBatch(n, submit),
    (p) => provider.submit(p),
    logger,
  );
  const relay = new OutboxRelay({
    db: database.db,
    subscribers: subscribersFrom(config.EVENT_SUBSCRIBERS, logger),
    logger,
    publishedRetentionMs: config.OUTBOX_RETENTION_S * 1000,
  });

  const server = await serve({
    name: "payments",
    services: [paymentsRpc(new Payments(repo, provider))],
    port: listenOn("PORT", config.PORT, env),
    maxInFlight: config.MAX_IN_FLIGHT,
    shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
    adminPort: listenOn("ADMIN_PORT", config.ADMIN_PORT, env),
    logger,
    readiness: () => database.ping(),
    handleSignals,
    onShutdown: async () => {
      await dispatcher.stop();
      await relay.stop();
      await database.close();
    },
  });
  dispatcher.start();
  relay.start();
  return server;
}

if (isEntryPoint(import.meta.url)) await runMain("payments", () => startPayments(process.env, true));
