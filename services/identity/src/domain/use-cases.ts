import { createHash, randomBytes, randomUUID } from "node:crypto";
import { FieldViolations } from "@dispatch/runtime";
import { emailTaken, invalidCredentials, refreshRejected, userNotFound } from "./errors.ts";
import type { Device, Platform, PublicJwk, TokenPair, User } from "./model.ts";
import { burnPasswordCheck, hashPassword, verifyPassword } from "./passwords.ts";
import type { IdentityRepository, TokenSigner } from "./ports.ts";

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export interface TokenLifetimes {
  accessSeconds: number;
  refreshSeconds: number;
}

/** Opaque refresh tokens: 256 random bits; only their SHA-256 is stored. */
function newRefreshToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString("base64url");
  return { token, hash: hashToken(token) };
}

function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

export class Identity {
  constructor(
    private readonly repo: IdentityRepository,
    private readonly signer: TokenSigner,
    private readonly lifetimes: TokenLifetimes,
  ) {}

  async signUp(input: {
    email: string;
    password: string;
    displayName: string;
  }): Promise<{ user: User; tokens: TokenPair }> {
    const email = input.email.trim().toLowerCase();
    const v = new FieldViolations();
    if (!EMAIL.test(email) || email.length > 254) v.add("email", "must be an email address");
    if (input.password.length < 10 || input.password.length > 128)
      v.add("password", "must be 10-128 characters");
    if (input.displayName.length > 100) v.add("display_name", "must be at most 100 characters");
    v.throwIfAny();
    const user = await this.repo.createUser({
      id: randomUUID(),
      email,
      displayName: input.displayName.trim(),
      passwordHash: await hashPassword(input.password),
    });
    if (!user) throw emailTaken();
    return { user, tokens: await this.startSession(user.id) };
  }

  /** Unknown email and wrong password fail identically, in about the same time. */
  async signIn(input: { email: string; password: string }): Promise<{ user: User; tokens: TokenPair }> {
    const found = await this.repo.findCredentials(input.email.trim().toLowerCase());
    if (!found) {
      await burnPasswordCheck(input.password);
      throw invalidCredentials();
    }
    if (!(await verifyPassword(input.password, found.passwordHash))) throw invalidCredentials();
    return { user: found.user, tokens: await this.startSession(found.user.id) };
  }

  /** Spends the refresh token and returns a new pair in the same session (rotation with reuse detection). */
  async refresh(refreshToken: string): Promise<TokenPair> {
    if (!refreshToken) throw refreshRejected("invalid");
    const next = newRefreshToken();
    const expiresAt = new Date(Date.now() + this.lifetimes.refreshSeconds * 1000);
    const r = await this.repo.rotate(hashToken(refreshToken), { tokenHash: next.hash, expiresAt });
    if (!r.ok) throw refreshRejected(r.why);
    return this.pair(r.userId, r.familyId, next.token, expiresAt);
  }

  async signOut(refreshToken: string): Promise<void> {
    if (refreshToken) await this.repo.revokeFamilyOf(hashToken(refreshToken), "sign-out");
  }

  publicKeys(): PublicJwk[] {
    return this.signer.publicKeys();
  }

  async getUser(id: string): Promise<User> {
    const v = new FieldViolations();
    if (!id) v.add("user_id", "is required");
    v.throwIfAny();
    const user = await this.repo.getUser(id);
    if (!user) throw userNotFound(id);
    return user;
  }

  async registerDevice(d: {
    userId: string;
    deviceId: string;
    platform: Platform | undefined;
    pushToken: string;
  }): Promise<Device> {
    const v = new FieldViolations();
    if (!d.userId) v.add("user_id", "is required");
    if (!d.deviceId || d.deviceId.length > 128) v.add("device_id", "must be 1-128 characters");
    if (!d.platform) v.add("platform", "must be PLATFORM_IOS or PLATFORM_ANDROID");
    if (!d.pushToken || d.pushToken.length > 4096) v.add("push_token", "must be 1-4096 characters");
    v.throwIfAny();
    return this.repo.upsertDevice({
      userId: d.userId,
      deviceId: d.deviceId,
      platform: d.platform!,
      pushToken: d.pushToken,
    });
  }

  async unregisterDevice(userId: string, deviceId: string): Promise<void> {
    const v = new FieldViolations();
    if (!userId) v.add("user_id", "is required");
    if (!deviceId) v.add("device_id", "is required");
    v.throwIfAny();
    await this.repo.deleteDevice(userId, deviceId);
  }

  async listDevices(userId: string): Promise<Device[]> {
    const v = new FieldViolations();
    if (!userId) v.add("user_id", "is required");
    v.throwIfAny();
    return this.repo.listDevices(userId);
  }

  private async startSession(userId: string): Promise<TokenPair> {
    const refresh = newRefreshToken();
    const expiresAt = new Date(Date.now() + this.lifetimes.refreshSeconds * 1000);
    const familyId = await this.repo.startFamily(userId, refresh.hash, expiresAt);
    return this.pair(userId, familyId, refresh.token, expiresAt);
  }

  private async pair(
    userId: string,
    familyId: string,
    refreshToken: string,
    refreshExpiresAt: Date,
  ): Promise<TokenPair> {
    const accessToken = await this.signer.sign({ sub: userId, sid: familyId }, this.lifetimes.accessSeconds);
    return {
      accessToken,
      accessTokenExpiresAt: new Date(Date.now() + this.lifetimes.accessSeconds * 1000),
      refreshToken,
      refreshTokenExpiresAt: refreshExpiresAt,
    };
  }
}
