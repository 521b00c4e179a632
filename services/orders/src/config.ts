import {
  integer,
  loadConfig,
  logLevel,
  optionalString,
  port,
  requiredString,
  serverSettings,
} from "@dispatch/runtime";

/** Orders' environment, validated at startup. */
export function ordersConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadConfig(
    {
      ...serverSettings(),
      PORT: port(50053),
      ADMIN_PORT: port(51053),
      DATABASE_URL: optionalString(),
      DATA_DIR: optionalString(),
      LOG_LEVEL: logLevel(),
      CATALOG_URL: requiredString("127.0.0.1:50052"),
      /** Who receives orders' events: "notifications=host:port,gateway=host:port". */
      EVENT_SUBSCRIBERS: optionalString(),
      /** How long a published event stays in the outbox before the relay deletes it, in seconds. */
      OUTBOX_RETENTION_S: integer(3600, 0, 315_360_000),
      /** How long an applied event's id is kept to recognise it if it is sent again, in seconds. */
      PROCESSED_EVENTS_RETENTION_S: integer(86_400, 60, 315_360_000),
    },
    env,
  );
}
