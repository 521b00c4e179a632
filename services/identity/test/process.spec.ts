import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { IdentityService } from "@dispatch/gen/dispatch/identity/v1/identity_pb.ts";
import { createTestDatabase, startServiceProcess, testClient } from "@dispatch/testing";
import { describe, expect, it } from "vitest";
import { HASH_THREADS } from "../src/hash-threads.ts";

describe("identity logs", () => {
  it("never contain passwords, tokens or emails, even at debug level; one JSON line per RPC", async () => {
    const db = await createTestDatabase();
    const proc = await startServiceProcess("identity", { DATABASE_URL: db.url, LOG_LEVEL: "debug" });
    try {
      const c = testClient(IdentityService, proc.port);
      const password = `pw-${randomUUID()}`;
      const address = `${randomUUID()}@example.com`;
      const up = await c.signUp({ email: address, password, displayName: "" });
      const inn = await c.signIn({ email: address, password });
      const refreshed = await c.refreshToken({ refreshToken: inn.tokens!.refreshToken });
      await c.signIn({ email: address, password: "wrong-password-123" }).catch(() => undefined);
      await proc.stop();
      const log = proc.output();
      expect(log).toContain('"method":"SignIn"');
      const rpcLines = log
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l))
        .filter((l) => l.msg === "rpc" && l.rpc?.service === "dispatch.identity.v1.IdentityService");
      expect(rpcLines.map((l) => l.rpc.method)).toEqual(["SignUp", "SignIn", "RefreshToken", "SignIn"]);
      for (const l of rpcLines)
        expect(l).toMatchObject({ service: "identity", requestId: expect.any(String) });
      expect(rpcLines.at(-1).code).toBe("Unauthenticated");
      for (const secret of [
        address,
        password,
        up.tokens!.accessToken,
        up.tokens!.refreshToken,
        inn.tokens!.refreshToken,
        refreshed.tokens!.refreshToken,
      ]) {
        expect(log).not.toContain(secret);
      }
    } finally {
      await proc.stop();
      await db.drop();
    }
  });
});

/** The process's threads of libuv's pool (named "libuv-worker" by libuv). */
function poolThreads(pid: number): number {
  return readdirSync(`/proc/${pid}/task`).filter((t) =>
    readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").startsWith("libuv"),
  ).length;
}

describe("identity's thread pool", () => {
  it.skipIf(process.platform !== "linux")(
    `hashes passwords on ${HASH_THREADS} threads unless UV_THREADPOOL_SIZE says otherwise`,
    async () => {
      const db = await createTestDatabase();
      try {
        for (const [env, threads] of [
          // Not inherited from this process (importing hash-threads.ts set it here too).
          [{ UV_THREADPOOL_SIZE: undefined }, HASH_THREADS],
          [{ UV_THREADPOOL_SIZE: "" }, HASH_THREADS],
          [{ UV_THREADPOOL_SIZE: "3" }, 3],
        ] as const) {
          const proc = await startServiceProcess("identity", { DATABASE_URL: db.url, ...env });
          try {
            const c = testClient(IdentityService, proc.port);
            // Six sign-ups at once: the pool has certainly started (libuv starts all its threads with it).
            await Promise.all(
              Array.from({ length: 6 }, () =>
                c.signUp({
                  email: `${randomUUID()}@example.com`,
                  password: `pw-${randomUUID()}`,
                  displayName: "",
                }),
              ),
            );
            expect(poolThreads(proc.child.pid!)).toBe(threads);
          } finally {
            await proc.stop();
          }
        }
      } finally {
        await db.drop();
      }
    },
    // three processes started one after another
    90_000,
  );
});
