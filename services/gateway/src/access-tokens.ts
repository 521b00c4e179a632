import { Code, ConnectError } from "@connectrpc/connect";
import type { Client } from "@dispatch/client";
import type { IdentityService } from "@dispatch/gen/dispatch/identity/v1/identity_pb.ts";
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey, jwtVerify } from "jose";

export interface AuthenticatedUser {
  userId: string;
  sessionId: string;
}

/** Refetch the JWKS for an unknown kid at most this often (a flood of forged kids must not hammer identity). */
const REFRESH_MIN_INTERVAL_MS = 30_000;

/**
 * Verifies access tokens locally against identity's JWKS, fetched once and cached; a token signed with
 * a kid the cache does not know triggers one refresh (key rotation). Only ES256 is accepted, so
 * `alg: none` and HMAC-confusion tokens fail.
 */
export class AccessTokenVerifier {
  private keys: JWTVerifyGetKey | undefined;
  private kids = new Set<string>();
  private lastFetch = 0;
  private fetching: Promise<void> | undefined;

  constructor(private readonly identity: Client<typeof IdentityService>) {}

  async verify(authorization: string | null): Promise<AuthenticatedUser> {
    const token = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/.exec(authorization ?? "")?.[1];
    if (!token) throw new ConnectError("missing or malformed bearer token", Code.Unauthenticated);
    const kid = headerKid(token);
    if (!this.keys || (kid && !this.kids.has(kid) && Date.now() - this.lastFetch > REFRESH_MIN_INTERVAL_MS)) {
      await this.refresh();
    }
    try {
      const { payload } = await jwtVerify(token, this.keys!, {
        issuer: "dispatch-identity",
        audience: "dispatch",
        algorithms: ["ES256"],
      });
      if (typeof payload.sub !== "string") throw new Error("no subject");
      return { userId: payload.sub, sessionId: typeof payload.sid === "string" ? payload.sid : "" };
    } catch {
      throw new ConnectError("access token is invalid or expired", Code.Unauthenticated);
    }
  }

  private refresh(): Promise<void> {
    this.fetching ??= (async () => {
      try {
        const { keys } = await this.identity.getJwks({}, { timeoutMs: 2000 });
        const set: JSONWebKeySet = {
          keys: keys.map((k) => ({
            kid: k.kid,
            kty: k.kty,
            crv: k.crv,
            x: k.x,
            y: k.y,
            alg: k.alg,
            use: k.use,
          })),
        };
        this.keys = createLocalJWKSet(set);
        this.kids = new Set(keys.map((k) => k.kid));
        this.lastFetch = Date.now();
      } finally {
        this.fetching = undefined;
      }
    })();
    return this.fetching;
  }
}

function headerKid(token: string): string | undefined {
  try {
    const header = JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString()) as { kid?: unknown };
    return typeof header.kid === "string" ? header.kid : undefined;
  } catch {
    return undefined;
  }
}
