import { randomUUID } from "node:crypto";
import { IdentityService } from "@dispatch/gen/dispatch/identity/v1/identity_pb.ts";
import { createTestDatabase, startServiceProcess, testClient } from "@dispatch/testing";
import { describe, expect, it } from "vitest";

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
