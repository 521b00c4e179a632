import {
  integer,
  loadConfig,
  logLevel,
  port,
  requiredString,
  type Setting,
  serverSettings,
} from "@dispatch/runtime";
import { redisOptions } from "./redis-url.ts";

/** REDIS_URL, checked as the rate limits will read it (src/redis-url.ts). */
function redisUrl(): Setting<string | undefined> {
  return {
    parse(raw) {
      if (raw === undefined) return { value: undefined };
      try {
        redisOptions(raw);
        return { value: raw };
      } catch (err) {
        return { error: (err as Error).message };
      }
    },
  };
}

/** Gateway's environment, validated at startup. */
export function gatewayConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadConfig(
    {
      ...serverSettings(),
      /** The public port: Connect, gRPC-Web and gRPC, HTTP/1.1 and h2c. */
      PORT: port(8080),
      /** Internal gRPC port (events from other services, health), and its admin port. */
      INTERNAL_PORT: port(50050),
      ADMIN_PORT: port(51050),
      LOG_LEVEL: logLevel(),
      IDENTITY_URL: requiredString("127.0.0.1:50051"),
      CATALOG_URL: requiredString("127.0.0.1:50052"),
      ORDERS_URL: requiredString("127.0.0.1:50053"),
      PAYMENTS_URL: requiredString("127.0.0.1:50054"),
      /** Unset: rate limits are kept in memory (per replica). */
      REDIS_URL: redisUrl(),
      /** Shared with the payment provider; signatures of POST /webhooks/payments are checked with it. */
      WEBHOOK_SECRET: requiredString("dev-webhook-secret"),
      WEBHOOK_TOLERANCE_S: integer(300, 1, 3600),
      /** Redis key prefix of the shared limits (replicas of one deployment use the same). */
      RATE_LIMIT_PREFIX: requiredString("dispatch-rl"),
      RATE_LIMIT_IP_PER_MINUTE: integer(600, 1, 1_000_000),
      RATE_LIMIT_USER_PER_MINUTE: integer(300, 1, 1_000_000),
      MAX_BODY_BYTES: integer(1024 * 1024, 1024, 64 * 1024 * 1024),
      HOME_DEADLINE_MS: integer(800, 50, 10_000),
      /** Comma list of allowed browser origins, or "*". */
      CORS_ORIGINS: requiredString("*"),
    },
    env,
  );
}

export type GatewayConfig = ReturnType<typeof gatewayConfig>;
