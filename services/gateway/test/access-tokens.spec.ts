import type { Client } from "@dispatch/client";
import type { IdentityService } from "@dispatch/gen/dispatch/identity/v1/identity_pb.ts";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { AccessTokenVerifier } from "../src/access-tokens.ts";

async function key(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(publicKey);
  return {
    privateKey,
    jwk: { kid, kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, y: jwk.y!, alg: "ES256", use: "sig" },
  };
}

function token(k: Awaited<ReturnType<typeof key>>, kid: string) {
  return new SignJWT({ sid: "s1" })
    .setProtectedHeader({ alg: "ES256", kid })
    .setSubject("user-1")
    .setIssuer("dispatch-identity")
    .setAudience("dispatch")
    .setExpirationTime("5m")
    .sign(k.privateKey);
}

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
});
