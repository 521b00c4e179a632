import { randomUUID } from "node:crypto";
import type { Database } from "@dispatch/db";
import { asc, isNull } from "drizzle-orm";
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from "jose";
import type { PublicJwk } from "./domain/model.ts";
import type { TokenSigner } from "./domain/ports.ts";
import { type schema, signingKeys } from "./store/schema.ts";

export const ISSUER = "dispatch-identity";
export const AUDIENCE = "dispatch";

interface LiveKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: PublicJwk;
}

/**
 * ES256 access tokens with jose. Keys come from JWT_PRIVATE_KEYS (a JSON array of private JWKs with
 * kid; the last signs) or from the signing_keys table, where one is generated on first start. Every
 * live key is published, so tokens signed by the previous key keep verifying during a rotation.
 */
export class JoseTokenSigner implements TokenSigner {
  private constructor(private readonly keys: LiveKey[]) {}

  static async load(
    db: Database<typeof schema>["db"],
    fromEnv: string | undefined,
  ): Promise<JoseTokenSigner> {
    let jwks: JWK[];
    if (fromEnv) {
      jwks = JSON.parse(fromEnv) as JWK[];
    } else {
      const rows = await db
        .select()
        .from(signingKeys)
        .where(isNull(signingKeys.retiredAt))
        .orderBy(asc(signingKeys.createdAt));
      if (rows.length === 0) {
        const { privateKey } = await generateKeyPair("ES256", { extractable: true });
        const jwk = { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: "ES256" };
        // Two replicas starting at once may both generate one; both keys are then live, which is fine.
        await db
          .insert(signingKeys)
          .values({ kid: jwk.kid, privateJwk: jwk as unknown as Record<string, string> })
          .onConflictDoNothing();
        jwks = [jwk];
      } else {
        jwks = rows.map((r) => r.privateJwk as unknown as JWK);
      }
    }
    if (jwks.length === 0) throw new Error("no signing key");
    const keys = await Promise.all(
      jwks.map(async (jwk) => {
        if (!jwk.kid || jwk.kty !== "EC" || jwk.crv !== "P-256" || !jwk.d)
          throw new Error("signing keys must be private EC P-256 JWKs with a kid");
        const privateKey = (await importJWK({ ...jwk, alg: "ES256" }, "ES256")) as CryptoKey;
        return {
          kid: jwk.kid,
          privateKey,
          publicJwk: {
            kid: jwk.kid,
            kty: "EC",
            crv: "P-256",
            x: jwk.x!,
            y: jwk.y!,
            alg: "ES256",
            use: "sig",
          },
        };
      }),
    );
    return new JoseTokenSigner(keys);
  }

  async sign(claims: { sub: string; sid: string }, ttlSeconds: number): Promise<string> {
    const key = this.keys.at(-1)!;
    return new SignJWT({ sid: claims.sid })
      .setProtectedHeader({ alg: "ES256", kid: key.kid, typ: "JWT" })
      .setSubject(claims.sub)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
      .sign(key.privateKey);
  }

  publicKeys(): PublicJwk[] {
    return this.keys.map((k) => k.publicJwk);
  }
}
