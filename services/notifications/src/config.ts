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

/** Notifications' environment, validated at startup. */
export function notificationsConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadConfig(
    {
      ...serverSettings(),
      PORT: port(50055),
      ADMIN_PORT: port(51055),
      DATABASE_URL: optionalString(),
      DATA_DIR: optionalString(),
      LOG_LEVEL: logLevel(),
      /** How long an applied event's id is kept to recognise it if it is sent again, in seconds. */
      PROCESSED_EVENTS_RETENTION_S: integer(86_400, 60, 315_360_000),
      IDENTITY_URL: requiredString("127.0.0.1:50051"),
      /** "recording" (local default: pushes are only logged) or "live" (FCM and APNs). */
      PUSH_PROVIDER: oneOf(["recording", "live"], "recording"),
      PUSH_CONCURRENCY: integer(4, 1, 256),
      FCM_BASE_URL: requiredString("https://fcm.googleapis.com"),
      FCM_PROJECT_ID: optionalString(),
      /** The service-account key file's JSON (client_email, private_key, token_uri). */
      FCM_SERVICE_ACCOUNT_JSON: optionalString(),
      APNS_BASE_URL: requiredString("https://api.push.apple.com"),
      APNS_TEAM_ID: optionalString(),
      APNS_KEY_ID: optionalString(),
      /** The .p8 key (PKCS#8 PEM). */
      APNS_PRIVATE_KEY: optionalString(),
      APNS_TOPIC: optionalString(),
    },
    env,
  );
}
