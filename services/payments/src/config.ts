import {
  integer,
  loadConfig,
  logLevel,
  oneOf,
  optionalString,
  port,
  requiredString,
  serverSettings,
} from "@dispatch/runtime";

/** Payments' environment, validated at startup. */
export function paymentsConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadConfig(
    {
      ...serverSettings(),
      PORT: port(50054),
      ADMIN_PORT: port(51054),
      DATABASE_URL: optionalString(),
      DATA_DIR: optionalString(),
      LOG_LEVEL: logLevel(),
      /** Who receives payments' events: "orders=host:port,notifications=host:port". */
      EVENT_SUBSCRIBERS: optionalString(),
      /** How long a published event stays in the outbox before the relay deletes it, in seconds. */
      OUTBOX_RETENTION_S: integer(3600, 0, 315_360_000),
      PAYMENT_PROVIDER: oneOf(["fake"], "fake"),
      /** Where the fake provider posts its webhooks (the gateway). */
      WEBHOOK_URL: requiredString("http://127.0.0.1:8080/webhooks/payments"),
      /** Shared with the gateway, which verifies the signatures. Set a real secret outside development. */
      WEBHOOK_SECRET: requiredString("dev-webhook-secret"),
      FAKE_PROVIDER_DELAY_MS: integer(100, 0, 60_000),
    },
    env,
  );
}
