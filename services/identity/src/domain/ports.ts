import type { Device, Platform, PublicJwk, User } from "./model.ts";

export type RotateResult =
  | { ok: true; userId: string; familyId: string }
  | { ok: false; why: "invalid" | "expired" | "reused" };

/** Where accounts, refresh-token families and devices live; implemented by the store. */
export interface IdentityRepository {
  /** Undefined when the email is taken (also when a concurrent sign-up won). */
  createUser(user: {
    id: string;
    email: string;
    displayName: string;
    passwordHash: string;
  }): Promise<User | undefined>;
  findCredentials(email: string): Promise<{ user: User; passwordHash: string } | undefined>;
  getUser(id: string): Promise<User | undefined>;
  /** Starts a session: a new family with its first refresh token (stored as a hash). */
  startFamily(userId: string, tokenHash: string, expiresAt: Date): Promise<string>;
  /**
   * Spends a refresh token and stores its successor in the same family, atomically: of concurrent
   * attempts with one token exactly one succeeds. A token spent before revokes its whole family.
   */
  rotate(tokenHash: string, next: { tokenHash: string; expiresAt: Date }): Promise<RotateResult>;
  /** Revokes the family of this token; unknown tokens change nothing. */
  revokeFamilyOf(tokenHash: string, reason: string): Promise<void>;
  upsertDevice(d: {
    userId: string;
    deviceId: string;
    platform: Platform;
    pushToken: string;
  }): Promise<Device>;
  deleteDevice(userId: string, deviceId: string): Promise<void>;
  listDevices(userId: string): Promise<Device[]>;
}

/** Signs access tokens and publishes the keys that verify them. */
export interface TokenSigner {
  sign(claims: { sub: string; sid: string }, ttlSeconds: number): Promise<string>;
  publicKeys(): PublicJwk[];
}
