import { integer, loadConfig, logLevel, optionalString, port, serverSettings } from "@dispatch/runtime";

/** Identity's environment, validated at startup. */
export function identityConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadConfig(
    {
      ...serverSettings(),
      PORT: port(50051),
      ADMIN_PORT: port(51051),
      DATABASE_URL: optionalString(),
      DATA_DIR: optionalString(),
      LOG_LEVEL: logLevel(),
      /** JSON array of private EC P-256 JWKs with kid; the last signs. Unset: keys kept in the database. */
      JWT_PRIVATE_KEYS: optionalString(),
      ACCESS_TOKEN_TTL_S: integer(900, 60, 86_400),
      REFRESH_TOKEN_TTL_S: integer(30 * 86_400, 3600, 365 * 86_400),
    },
    env,
  );
}
