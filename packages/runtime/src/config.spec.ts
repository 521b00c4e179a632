import { describe, expect, it } from "vitest";
import { bool, ConfigError, loadConfig, oneOf, optionalString, port, requiredString } from "./config.ts";

const spec = {
  PORT: port(50052),
  LOG_LEVEL: oneOf(["info", "debug"], "info"),
  CATALOG_URL: requiredString(),
  DATABASE_URL: optionalString(),
  SEED: bool(true),
};

describe("loadConfig", () => {
  it("applies defaults and parses values", () => {
    expect(loadConfig(spec, { CATALOG_URL: "c:1", PORT: "7000", SEED: "false" })).toEqual({
      PORT: 7000,
      LOG_LEVEL: "info",
      CATALOG_URL: "c:1",
      DATABASE_URL: undefined,
      SEED: false,
    });
  });

  it("names every bad or missing variable in one error", () => {
    let err: unknown;
    try {
      loadConfig(spec, { PORT: "abc", LOG_LEVEL: "loud", SEED: "maybe" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    for (const name of ["PORT", "LOG_LEVEL", "CATALOG_URL", "SEED"]) expect(message).toContain(name);
    expect(message).toContain('PORT must be an integer 0-65535 (got "abc")');
    expect(message).toContain("CATALOG_URL is required");
    expect((err as ConfigError).problems).toHaveLength(4);
  });
});
