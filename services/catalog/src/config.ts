import { bool, loadConfig, logLevel, optionalString, port, serverSettings } from "@dispatch/runtime";

/** Catalog's environment, validated at startup. */
export function catalogConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadConfig(
    {
      ...serverSettings(),
      PORT: port(50052),
      ADMIN_PORT: port(51052),
      DATABASE_URL: optionalString(),
      DATA_DIR: optionalString(),
      LOG_LEVEL: logLevel(),
      SEED_DEMO_DATA: bool(true),
    },
    env,
  );
}
