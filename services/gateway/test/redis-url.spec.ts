import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "@dispatch/runtime";
import { describe, expect, it } from "vitest";
import { bundleEntry } from "../../../packages/build/src/bundle.ts";
import { gatewayConfig } from "../src/config.ts";
import { redisOptions } from "../src/redis-url.ts";

describe("REDIS_URL", () => {
  it("becomes ioredis' host, port, credentials, database and TLS", () => {
    expect(redisOptions("redis://127.0.0.1:6379")).toEqual({ host: "127.0.0.1", port: 6379, db: 0 });
    expect(redisOptions("redis://cache.internal")).toEqual({ host: "cache.internal", port: 6379, db: 0 });
    expect(redisOptions("redis://:s%40cret@cache.internal:6380/2")).toEqual({
      host: "cache.internal",
      port: 6380,
      password: "s@cret",
      db: 2,
    });
    expect(redisOptions("rediss://gateway:pw@cache.example.com/1")).toEqual({
      host: "cache.example.com",
      port: 6379,
      username: "gateway",
      password: "pw",
      db: 1,
      tls: { servername: "cache.example.com" },
    });
    expect(redisOptions("redis://[::1]:7000")).toMatchObject({ host: "::1", port: 7000 });
  });

  it("is refused at start-up with what is wrong, never the value", () => {
    for (const [url, problem] of [
      ["cache.internal:6379", "the scheme is cache.internal:"],
      ["http://cache.internal", "the scheme is http:"],
      ["redis://:hunter2@cache.internal/zero", "the database must be a number"],
      ["not a url", "not a URL"],
    ] as const) {
      let error: unknown;
      try {
        gatewayConfig({ REDIS_URL: url });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as ConfigError).message;
      expect(message).toContain(`REDIS_URL must be redis://`);
      expect(message).toContain(problem);
      expect(message).not.toContain("hunter2");
    }
    expect(gatewayConfig({}).REDIS_URL).toBeUndefined();
  });

  it("starts the rate limits' client, bundled as the images run it, without node's url.parse() warning", async () => {
    // node warns about url.parse() only when the caller is outside node_modules, as ioredis is in a
    // bundle: the same code run from its install would pass either way.
    const dir = mkdtempSync(join(tmpdir(), "dispatch-redis-url-"));
    try {
      writeFileSync(
        join(dir, "entry.ts"),
        `import { RateLimits } from ${JSON.stringify(fileURLToPath(new URL("../src/rate-limits.ts", import.meta.url)))};
         const limits = new RateLimits({ ipPerMinute: 60, userPerMinute: 60, redisUrl: "redis://:pw@127.0.0.1:1/3" });
         await new Promise((r) => setTimeout(r, 100));
         await limits.close();
         console.log("constructed");`,
      );
      const outfile = join(dir, "entry.mjs");
      await bundleEntry(join(dir, "entry.ts"), outfile);
      const child = spawnSync(process.execPath, [outfile], { encoding: "utf8", timeout: 30_000 });
      expect(child.stdout).toContain("constructed");
      expect(child.stderr).not.toMatch(/DeprecationWarning|DEP0169/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
