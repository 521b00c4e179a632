import { closeClients, createClient } from "@dispatch/client";
import { CatalogService } from "@dispatch/gen/dispatch/catalog/v1/catalog_pb.ts";
import { IdentityService } from "@dispatch/gen/dispatch/identity/v1/identity_pb.ts";
import { OrdersService } from "@dispatch/gen/dispatch/orders/v1/orders_pb.ts";
import { PaymentsService } from "@dispatch/gen/dispatch/payments/v1/payments_pb.ts";
import { createLogger, isEntryPoint, listenOn, runMain, serve } from "@dispatch/runtime";
import { AccessTokenVerifier } from "./access-tokens.ts";
import { appService } from "./app-rpc.ts";
import { gatewayConfig } from "./config.ts";
import { startEdgeServer } from "./edge-server.ts";
import { OrderWatchHub, orderEventsSubscriber } from "./order-watch.ts";
import { paymentWebhookHandler } from "./payment-webhook.ts";
import { RateLimits } from "./rate-limits.ts";

export interface Gateway {
  port: number;
  internalPort: number;
  /** HTTP admin port: /healthz, /readyz, /metrics (undefined when ADMIN_PORT is off). */
  adminPort: number | undefined;
  shutdown(): Promise<void>;
}

/** Wiring only: config -> downstream clients -> edge (public) and internal servers. */
export async function startGateway(
  env: NodeJS.ProcessEnv = process.env,
  handleSignals = false,
): Promise<Gateway> {
  const config = gatewayConfig(env);
  const logger = createLogger({ name: "gateway", level: config.LOG_LEVEL });
  const d = {
    identity: createClient(IdentityService, { target: config.IDENTITY_URL, name: "identity", logger }),
    catalog: createClient(CatalogService, { target: config.CATALOG_URL, name: "catalog", logger }),
    orders: createClient(OrdersService, { target: config.ORDERS_URL, name: "orders", logger }),
    payments: createClient(PaymentsService, { target: config.PAYMENTS_URL, name: "payments", logger }),
  };
  const hub = new OrderWatchHub();
  const limits = new RateLimits({
    ipPerMinute: config.RATE_LIMIT_IP_PER_MINUTE,
    userPerMinute: config.RATE_LIMIT_USER_PER_MINUTE,
    redisUrl: config.REDIS_URL,
    prefix: config.RATE_LIMIT_PREFIX,
    logger,
  });
  await limits.ready();
  const edge = await startEdgeServer({
    port: listenOn("PORT", config.PORT, env),
    host: "0.0.0.0",
    impl: appService(d, hub, { homeDeadlineMs: config.HOME_DEADLINE_MS }),
    verifier: new AccessTokenVerifier(d.identity),
    limits,
    logger,
    maxBodyBytes: config.MAX_BODY_BYTES,
    corsOrigins: config.CORS_ORIGINS,
    routes: {
      "/webhooks/payments": paymentWebhookHandler({
        payments: d.payments,
        secret: config.WEBHOOK_SECRET,
        toleranceS: config.WEBHOOK_TOLERANCE_S,
        provider: "fake",
        logger,
      }),
    },
  });
  const internal = await serve({
    name: "gateway",
    services: [orderEventsSubscriber(hub)],
    port: listenOn("INTERNAL_PORT", config.INTERNAL_PORT, env),
    maxInFlight: config.MAX_IN_FLIGHT,
    shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
    adminPort: listenOn("ADMIN_PORT", config.ADMIN_PORT, env),
    logger,
    handleSignals,
    onShutdown: async () => {
      await edge.close();
      await limits.close();
      await closeClients();
    },
  });
  logger.info({ port: edge.port }, "public edge listening (Connect, gRPC-Web, gRPC; HTTP/1.1 and h2c)");
  return {
    port: edge.port,
    internalPort: internal.port,
    adminPort: internal.adminPort,
    shutdown: () => internal.shutdown(),
  };
}

if (isEntryPoint(import.meta.url)) await runMain("gateway", () => startGateway(process.env, true));
