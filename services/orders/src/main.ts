import { fileURLToPath } from "node:url";
import { closeClient, closeClients, createClient } from "@dispatch/client";
import { openDatabase } from "@dispatch/db";
import {
  eventSubscriberService,
  OutboxRelay,
  ProcessedEventsRetention,
  subscribersFrom,
} from "@dispatch/events";
import { CatalogService } from "@dispatch/gen/dispatch/catalog/v1/catalog_pb.ts";
import {
  createLogger,
  currentCall,
  isEntryPoint,
  listenOn,
  runMain,
  type Server,
  serve,
} from "@dispatch/runtime";
import { ordersConfig } from "./config.ts";
import { Orders } from "./domain/use-cases.ts";
import { CatalogPriceBook } from "./downstream/catalog-price-book.ts";
import { ordersEventHandler } from "./event-handlers.ts";
import { ordersRpc } from "./rpc.ts";
import { PgOrdersRepository } from "./store/orders-repository.ts";
import { schema } from "./store/schema.ts";

/** Wiring only: config -> db -> downstream clients -> domain -> serve(). Tests call it with their own env. */
export async function startOrders(
  env: NodeJS.ProcessEnv = process.env,
  handleSignals = false,
): Promise<Server> {
  const config = ordersConfig(env);
  const logger = createLogger({ name: "orders", level: config.LOG_LEVEL });
  const database = await openDatabase({
    service: "orders",
    url: config.DATABASE_URL,
    dataDir: config.DATA_DIR ?? ".data/orders",
    schema,
    migrationsFolder: fileURLToPath(new URL("../migrations", import.meta.url)),
    signal: () => currentCall()?.signal,
    // Active orders (the app's most frequent call), an order and a retried PlaceOrder's lookup read
    // through a read pool of their own, whose statements share connections under load (packages/db):
    // two connections, so that they do (against five: PostgreSQL's CPU per call at 2,000 calls/s 154 ->
    // 116-124 µs, docs/BENCHMARKS-ROUNDS.md, "Twenty-ninth round").
    readPoolSize: 2,
    // The writes, transactions, the outbox relay and event handlers on the other 5. PlaceOrder at 200
    // rps, two `pnpm bench:ab` runs against a pool of 10: CPU per order 6,078 / 7,186 against 6,395 /
    // 6,801 µs, p99 98 / 101 against 76 / 155 ms ("Twenty-eighth round"). DATABASE_URL's `max`, when
    // set, replaces both sizes (connectionBudget).
    poolSize: 5,
  });
  const catalog = createClient(CatalogService, { target: config.CATALOG_URL, name: "catalog", logger });
  const priceBook = new CatalogPriceBook(catalog);
  const relay = new OutboxRelay({
    db: database.db,
    subscribers: subscribersFrom(config.EVENT_SUBSCRIBERS, logger),
    logger,
    publishedRetentionMs: config.OUTBOX_RETENTION_S * 1000,
  });
  const processed = new ProcessedEventsRetention({
    db: database.db,
    logger,
    retentionMs: config.PROCESSED_EVENTS_RETENTION_S * 1000,
  });

  const server = await serve({
    name: "orders",
    services: [
      ordersRpc(new Orders(new PgOrdersRepository(database.db, database.reads), priceBook)),
      eventSubscriberService(database.db, ordersEventHandler(priceBook, logger), {
        handles: (event) => event.payload.case === "paymentSucceeded",
      }),
    ],
    port: listenOn("PORT", config.PORT, env),
    maxInFlight: config.MAX_IN_FLIGHT,
    shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
    adminPort: listenOn("ADMIN_PORT", config.ADMIN_PORT, env),
    logger,
    readiness: () => database.ping(),
    handleSignals,
    onShutdown: async () => {
      await relay.stop();
      await processed.stop();
      closeClient(catalog);
      await closeClients();
      await database.close();
    },
  });
  relay.start();
  processed.start();
  return server;
}

if (isEntryPoint(import.meta.url)) await runMain("orders", () => startOrders(process.env, true));
