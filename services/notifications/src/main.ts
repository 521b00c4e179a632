import { fileURLToPath } from "node:url";
import { closeClients, createClient } from "@dispatch/client";
import { openDatabase, QueueVacuum } from "@dispatch/db";
import { eventSubscriberService, ProcessedEventsRetention } from "@dispatch/events";
import { IdentityService } from "@dispatch/gen/dispatch/identity/v1/identity_pb.ts";
import {
  ConfigError,
  createLogger,
  currentCall,
  isEntryPoint,
  listenOn,
  runMain,
  type Server,
  serve,
} from "@dispatch/runtime";
import { notificationsConfig } from "./config.ts";
import { notificationFor } from "./domain/event-messages.ts";
import type { PushProvider } from "./domain/push.ts";
import { Notifications } from "./domain/use-cases.ts";
import { IdentityDevices } from "./downstream/identity-devices.ts";
import { ApnsProvider } from "./providers/apns.ts";
import { FcmProvider, type ServiceAccount } from "./providers/fcm.ts";
import { RecordingProvider } from "./providers/recording.ts";
import { PushWorker } from "./push-worker.ts";
import { notificationsRpc } from "./rpc.ts";
import { PgNotificationsRepository } from "./store/notifications-repository.ts";
import { schema } from "./store/schema.ts";

type Config = ReturnType<typeof notificationsConfig>;

function providers(c: Config): { ios: PushProvider; android: PushProvider } {
  if (c.PUSH_PROVIDER === "recording") {
    const recorder = new RecordingProvider();
    return { ios: recorder, android: recorder };
  }
  const missing = (
    [
      "FCM_PROJECT_ID",
      "FCM_SERVICE_ACCOUNT_JSON",
      "APNS_TEAM_ID",
      "APNS_KEY_ID",
      "APNS_PRIVATE_KEY",
      "APNS_TOPIC",
    ] as const
  ).filter((k) => !c[k]);
  if (missing.length > 0)
    throw new ConfigError(missing.map((k) => `${k} is required when PUSH_PROVIDER is live`));
  return {
    android: new FcmProvider({
      baseUrl: c.FCM_BASE_URL,
      projectId: c.FCM_PROJECT_ID!,
      account: JSON.parse(c.FCM_SERVICE_ACCOUNT_JSON!) as ServiceAccount,
    }),
    ios: new ApnsProvider({
      baseUrl: c.APNS_BASE_URL,
      teamId: c.APNS_TEAM_ID!,
      keyId: c.APNS_KEY_ID!,
      privateKeyPem: c.APNS_PRIVATE_KEY!,
      topic: c.APNS_TOPIC!,
    }),
  };
}

/** Wiring only: config -> db -> providers -> domain -> worker -> serve(). */
export async function startNotifications(
  env: NodeJS.ProcessEnv = process.env,
  handleSignals = false,
): Promise<Server> {
  const config = notificationsConfig(env);
  const push = providers(config);
  const logger = createLogger({ name: "notifications", level: config.LOG_LEVEL });
  const database = await openDatabase({
    service: "notifications",
    url: config.DATABASE_URL,
    dataDir: config.DATA_DIR ?? ".data/notifications",
    schema,
    migrationsFolder: fileURLToPath(new URL("../migrations", import.meta.url)),
    signal: () => currentCall()?.signal,
  });
  const queueVacuum = new QueueVacuum(database.db, "notifications", 2000, logger);
  const repo = new PgNotificationsRepository(database.db, queueVacuum);
  const identity = createClient(IdentityService, { target: config.IDENTITY_URL, name: "identity", logger });
  const worker = new PushWorker({
    repo,
    devices: new IdentityDevices(identity),
    providers: push,
    logger,
    concurrency: config.PUSH_CONCURRENCY,
  });

  const processed = new ProcessedEventsRetention({
    db: database.db,
    logger,
    retentionMs: config.PROCESSED_EVENTS_RETENTION_S * 1000,
  });

  const server = await serve({
    name: "notifications",
    services: [
      notificationsRpc(new Notifications(repo)),
      // Events become queued pushes in the same transaction that marks them processed.
      eventSubscriberService(
        database.db,
        async (event, tx) => {
          const input = notificationFor(event);
          if (input) await new Notifications(new PgNotificationsRepository(tx as never)).send(input);
        },
        // An event that makes no push (OrderPlaced, say) is acknowledged without touching the database.
        { handles: (event) => notificationFor(event) !== undefined },
      ),
    ],
    port: listenOn("PORT", config.PORT, env),
    maxInFlight: config.MAX_IN_FLIGHT,
    shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
    adminPort: listenOn("ADMIN_PORT", config.ADMIN_PORT, env),
    logger,
    readiness: () => database.ping(),
    handleSignals,
    onShutdown: async () => {
      await worker.stop();
      await processed.stop();
      await queueVacuum.settled();
      await push.ios.close?.();
      await push.android.close?.();
      await closeClients();
      await database.close();
    },
  });
  worker.start();
  processed.start();
  return server;
}

if (isEntryPoint(import.meta.url))
  await runMain("notifications", () => startNotifications(process.env, true));
