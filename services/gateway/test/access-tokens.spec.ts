import type { Client } from "@dispatch/client";
import type { IdentityService } from "@dispatch/gen/dispatch/identity/v1/identity_pb.ts";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AccessTokenVerifier } from "../src/access-tokens.ts";

async function key(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(publicKey);
  return {
    privateKey,
    jwk: { kid, kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, y: jwk.y!, alg: "ES256", use: "sig" },
  };
}

function token(k: Awaited<ReturnType<typeof key>>, kid: string, expires = "5m") {
  return new SignJWT({ sid: "s1" })
    .setProtectedHeader({ alg: "ES256", kid })
    .setSubject("user-1")
    .setIssuer("dispatch-identity")
    .setAudience("dispatch")
    .setExpirationTime(expires)
    .sign(k.privateKey);
}

afterEach(() => {
  vi.useRealTimers();
});

describe("AccessTokenVerifier", () => {
  it("caches the JWKS, refetches once for an unknown kid (rotation), and not again for a flood of them", async () => {
    const a = await key("a");
    const b = await key("b");
    let published = [a.jwk];
    let fetches = 0;
    const identity = {
      getJwks: async () => {
        fetches++;
        return { keys: published };
      },
    } as unknown as Client<typeof IdentityService>;
    const verifier = new AccessTokenVerifier(identity);

    expect((await verifier.verify(`Bearer ${await token(a, "a")}`)).userId).toBe("user-1");
    expect((await verifier.verify(`Bearer ${await token(a, "a")}`)).sessionId).toBe("s1");
    expect(fetches).toBe(1);

    // identity rotated: key b now signs.
    published = [a.jwk, b.jwk];
    // The first refresh happens on the first unknown kid; it is rate-limited afterwards, so move the clock.
    (verifier as unknown as { lastFetch: number }).lastFetch = 0;
    expect((await verifier.verify(`Bearer ${await token(b, "b")}`)).userId).toBe("user-1");
    expect(fetches).toBe(2);

    const forged = await key("c");
    for (let i = 0; i < 5; i++) {
      await expect(verifier.verify(`Bearer ${await token(forged, "c")}`)).rejects.toThrow(
        /invalid or expired/,
      );
    }
    expect(fetches).toBe(2);
  });

  it("checks a token's signature once, still refuses it once expired, and never trusts a token that differs", async () => {
    const a = await key("a");
    const identity = { getJwks: async () => ({ keys: [a.jwk] }) } as unknown as Client<
      typeof IdentityService
    >;
    const verifier = new AccessTokenVerifier(identity);
    const good = await token(a, "a", "60s");
    expect((await verifier.verify(`Bearer ${good}`)).userId).toBe("user-1");

    // Count signature checks from here on: jose asks the key set for the key on every verification.
    const internals = verifier as unknown as { keys: (...args: unknown[]) => unknown };
    const keys = internals.keys;
    let lookups = 0;
    internals.keys = (...args: unknown[]) => {
      lookups++;
      return keys(...args);
    };
    for (let i = 0; i < 3; i++) expect((await verifier.verify(`Bearer ${good}`)).sessionId).toBe("s1");
    expect(lookups).toBe(0);

    // Same header and claims, one byte of the signature changed: a different token, verified and refused.
    const [h, p, sig] = good.split(".");
    const flipped = `${h}.${p}.${sig!.slice(0, 10)}${sig![10] === "A" ? "B" : "A"}${sig!.slice(11)}`;
    await expect(verifier.verify(`Bearer ${flipped}`)).rejects.toThrow(/invalid or expired/);
    expect(lookups).toBe(1);

    // Past its exp the cached token is refused like any expired one.
    vi.useFakeTimers({ now: Date.now() + 61_000, toFake: ["Date"] });
    await expect(verifier.verify(`Bearer ${good}`)).rejects.toThrow(/invalid or expired/);
  });
});
