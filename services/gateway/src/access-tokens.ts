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
/** Verified tokens remembered (oldest dropped first), and for at most this long (within their own expiry). */
const VERIFIED_MAX = 10_000;
const VERIFIED_TTL_MS = 5 * 60_000;

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
  /**
   * Tokens whose signature has been checked, by their exact text, with when to stop trusting them (their
   * exp, at most VERIFIED_TTL_MS away). An app sends the same access token on every call until it
   * refreshes it, and an ES256 verification is most of what authenticating a call costs (`pnpm bench`),
   * so each token's signature is checked once. A token that differs in any byte is a different key
   * and is verified in full; an expired one is refused from the cache as jose would refuse it.
   */
  private readonly verified = new Map<string, AuthenticatedUser & { until: number }>();

  constructor(private readonly identity: Client<typeof IdentityService>) {}

  /** The user of a token this verifier has already verified and that is still valid; else undefined. */
  known(authorization: string | null): AuthenticatedUser | undefined {
    const token = bearer(authorization);
    return token === undefined ? undefined : this.cached(token);
  }

  async verify(authorization: string | null): Promise<AuthenticatedUser> {
    const token = bearer(authorization);
    if (!token) throw new ConnectError("missing or malformed bearer token", Code.Unauthenticated);
    const known = this.cached(token);
    if (known) return known;
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
      const user = { userId: payload.sub, sessionId: typeof payload.sid === "string" ? payload.sid : "" };
      this.remember(token, user, payload.exp);
      return user;
    } catch {
      throw new ConnectError("access token is invalid or expired", Code.Unauthenticated);
    }
  }

  private cached(token: string): AuthenticatedUser | undefined {
    const entry = this.verified.get(token);
    if (!entry) return undefined;
    if (Date.now() < entry.until) return { userId: entry.userId, sessionId: entry.sessionId };
    this.verified.delete(token);
    return undefined;
  }

  private remember(token: string, user: AuthenticatedUser, exp: number | undefined): void {
    const now = Date.now();
    const until = Math.min(exp === undefined ? now : exp * 1000, now + VERIFIED_TTL_MS);
    if (until <= now) return;
    if (this.verified.size >= VERIFIED_MAX) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, { ...user, until });
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

function bearer(authorization: string | null): string | undefined {
  return /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/.exec(authorization ?? "")?.[1];
}

function headerKid(token: string): string | undefined {
  try {
    const header = JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString()) as { kid?: unknown };
    return typeof header.kid === "string" ? header.kid : undefined;
  } catch {
    return undefined;
  }
}
