import { randomUUID } from "node:crypto";
import { IdentityService } from "@dispatch/gen/dispatch/identity/v1/identity_pb.ts";
import { createTestDatabase, startServiceProcess, testClient } from "@dispatch/testing";
import { describe, expect, it } from "vitest";

describe("identity logs", () => {
  it("never contain passwords or tokens, even at debug level", async () => {
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
      for (const secret of [
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
