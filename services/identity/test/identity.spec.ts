import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { IdentityService, Platform } from "@dispatch/gen/dispatch/identity/v1/identity_pb.ts";
import type { Server } from "@dispatch/runtime";
import { createTestDatabase, statusOf, type TestDatabase, testClient } from "@dispatch/testing";
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  SignJWT,
} from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startIdentity } from "../src/main.ts";

let db: TestDatabase;
let server: Server;
let identity: ReturnType<typeof testClient<typeof IdentityService>>;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startIdentity({
    PORT: "0",
    ADMIN_PORT: "0",
    DATA_DIR: "memory://",
    LOG_LEVEL: "warn",
    ...(db.url ? { DATABASE_URL: db.url } : {}),
  });
  identity = testClient(IdentityService, server.port);
});

afterAll(async () => {
  await server?.shutdown();
  await db?.drop();
});

const email = () => `Ada.${randomUUID()}@Example.com`;
const PASSWORD = "correct horse battery";

async function verify(token: string) {
  const { keys } = await identity.getJwks({});
  const jwks = createLocalJWKSet({
    keys: keys.map((k) => ({ kid: k.kid, kty: k.kty, crv: k.crv, x: k.x, y: k.y, alg: k.alg, use: k.use })),
  });
  return jwtVerify(token, jwks, { issuer: "dispatch-identity", audience: "dispatch", algorithms: ["ES256"] });
}

describe(`identity (${process.env.TEST_DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("signs up and issues an ES256 access token (15 min, kid) that verifies against the JWKS", async () => {
    const address = email();
    const res = await identity.signUp({ email: address, password: PASSWORD, displayName: "Ada" });
    expect(res.user?.email).toBe(address.toLowerCase());
    const { payload, protectedHeader } = await verify(res.tokens!.accessToken);
    expect(protectedHeader.alg).toBe("ES256");
    expect(protectedHeader.kid).toBeTruthy();
    expect(payload.sub).toBe(res.user?.id);
    expect(payload.exp! - payload.iat!).toBe(900);
    expect(res.tokens!.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const refreshDays =
      (Number(res.tokens!.refreshTokenExpireTime!.seconds) * 1000 - Date.now()) / 86_400_000;
    expect(Math.round(refreshDays)).toBe(30);
  });

  it("refuses a taken email, also when two sign-ups race", async () => {
    const address = email();
    await identity.signUp({ email: address, password: PASSWORD, displayName: "" });
    const again = await statusOf(
      identity.signUp({ email: address.toUpperCase(), password: PASSWORD, displayName: "" }),
    );
    expect(again.code).toBe(Code.AlreadyExists);
    expect(again.reason).toBe("EMAIL_TAKEN");
    const racing = email();
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () =>
        identity.signUp({ email: racing, password: PASSWORD, displayName: "" }),
      ),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
  });

  it("names bad sign-up fields", async () => {
    const s = await statusOf(
      identity.signUp({ email: "not-an-email", password: "short", displayName: "x".repeat(101) }),
    );
    expect(s.code).toBe(Code.InvalidArgument);
    expect(s.fieldViolations.map((v) => v.field).sort()).toEqual(["display_name", "email", "password"]);
  });

  it("fails unknown email and wrong password identically", async () => {
    const address = email();
    await identity.signUp({ email: address, password: PASSWORD, displayName: "" });
    expect(
      (await identity.signIn({ email: ` ${address.toUpperCase()} `, password: PASSWORD })).user?.email,
    ).toBe(address.toLowerCase());
    const wrong = await statusOf(identity.signIn({ email: address, password: "wrong password!" }));
    const unknown = await statusOf(identity.signIn({ email: email(), password: PASSWORD }));
    expect(wrong.code).toBe(Code.Unauthenticated);
    expect(wrong).toEqual(unknown);
    expect(wrong.reason).toBe("INVALID_CREDENTIALS");
  });

  it("rotates refresh tokens, and a reused one revokes the whole family", async () => {
    const { tokens } = await identity.signUp({ email: email(), password: PASSWORD, displayName: "" });
    const second = await identity.refreshToken({ refreshToken: tokens!.refreshToken });
    const third = await identity.refreshToken({ refreshToken: second.tokens!.refreshToken });
    expect(
      new Set([tokens!.refreshToken, second.tokens!.refreshToken, third.tokens!.refreshToken]).size,
    ).toBe(3);
    expect((await verify(third.tokens!.accessToken)).payload.sid).toBe(
      (await verify(tokens!.accessToken)).payload.sid,
    );

    const reuse = await statusOf(identity.refreshToken({ refreshToken: tokens!.refreshToken }));
    expect(reuse.code).toBe(Code.Unauthenticated);
    expect(reuse.reason).toBe("REFRESH_TOKEN_REUSED");
    // The newest token, never used, died with its family.
    const newest = await statusOf(identity.refreshToken({ refreshToken: third.tokens!.refreshToken }));
    expect(newest.code).toBe(Code.Unauthenticated);
    const unknown = await statusOf(identity.refreshToken({ refreshToken: "nope" }));
    expect(unknown.reason).toBe("REFRESH_TOKEN_INVALID");
  });

  it("lets exactly one of 10 concurrent refreshes of one token win", async () => {
    const { tokens } = await identity.signUp({ email: email(), password: PASSWORD, displayName: "" });
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () => identity.refreshToken({ refreshToken: tokens!.refreshToken })),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
  });

  it("signs out by revoking the family", async () => {
    const { tokens } = await identity.signUp({ email: email(), password: PASSWORD, displayName: "" });
    await identity.signOut({ refreshToken: tokens!.refreshToken });
    await identity.signOut({ refreshToken: tokens!.refreshToken });
    expect((await statusOf(identity.refreshToken({ refreshToken: tokens!.refreshToken }))).code).toBe(
      Code.Unauthenticated,
    );
  });

  it("registers, lists and unregisters push tokens per device", async () => {
    const { user } = await identity.signUp({ email: email(), password: PASSWORD, displayName: "" });
    const userId = user!.id;
    await identity.registerDevice({ userId, deviceId: "phone", platform: Platform.IOS, pushToken: "apns-1" });
    await identity.registerDevice({ userId, deviceId: "phone", platform: Platform.IOS, pushToken: "apns-2" });
    await identity.registerDevice({
      userId,
      deviceId: "tablet",
      platform: Platform.ANDROID,
      pushToken: "fcm-1",
    });
    const listed = await identity.listDevices({ userId });
    expect(listed.devices.map((d) => [d.deviceId, d.platform, d.pushToken])).toEqual([
      ["phone", Platform.IOS, "apns-2"],
      ["tablet", Platform.ANDROID, "fcm-1"],
    ]);
    await identity.unregisterDevice({ userId, deviceId: "phone" });
    expect((await identity.listDevices({ userId })).devices.map((d) => d.deviceId)).toEqual(["tablet"]);
    const bad = await statusOf(
      identity.registerDevice({ userId, deviceId: "", platform: Platform.UNSPECIFIED, pushToken: "" }),
    );
    expect(bad.fieldViolations.map((v) => v.field).sort()).toEqual(["device_id", "platform", "push_token"]);
    expect((await statusOf(identity.getUser({ userId: randomUUID() }))).reason).toBe("USER_NOT_FOUND");
  });
});

describe("identity key rotation", () => {
  it("publishes every configured key and signs with the newest; tokens from the older one still verify", async () => {
    const jwks = [];
    for (const kid of ["old-key", "new-key"]) {
      const { privateKey } = await generateKeyPair("ES256", { extractable: true });
      jwks.push({ ...(await exportJWK(privateKey)), kid, alg: "ES256" });
    }
    const s = await startIdentity({
      PORT: "0",
      ADMIN_PORT: "0",
      DATA_DIR: "memory://",
      LOG_LEVEL: "warn",
      JWT_PRIVATE_KEYS: JSON.stringify(jwks),
    });
    try {
      const c = testClient(IdentityService, s.port);
      const { keys } = await c.getJwks({});
      expect(keys.map((k) => k.kid)).toEqual(["old-key", "new-key"]);
      expect(keys.every((k) => !("d" in k) || !(k as { d?: string }).d)).toBe(true);
      const { tokens } = await c.signUp({ email: email(), password: PASSWORD, displayName: "" });
      expect(decodeProtectedHeader(tokens!.accessToken).kid).toBe("new-key");
      const set = createLocalJWKSet({
        keys: keys.map((k) => ({ kid: k.kid, kty: k.kty, crv: k.crv, x: k.x, y: k.y, alg: k.alg })),
      });
      const { importJWK } = await import("jose");
      const oldToken = await new SignJWT({})
        .setProtectedHeader({ alg: "ES256", kid: "old-key" })
        .setSubject("u")
        .setIssuer("dispatch-identity")
        .setAudience("dispatch")
        .setExpirationTime("5m")
        .sign(await importJWK(jwks[0]!, "ES256"));
      expect(
        (await jwtVerify(oldToken, set, { issuer: "dispatch-identity", audience: "dispatch" })).payload.sub,
      ).toBe("u");
    } finally {
      await s.shutdown();
    }
  });
});
