/** Accounts, sessions and devices. Pure TypeScript. */

export interface User {
  id: string;
  email: string;
  displayName: string;
  createdAt: Date;
}

export type Platform = "IOS" | "ANDROID";

export interface Device {
  userId: string;
  deviceId: string;
  platform: Platform;
  pushToken: string;
  updatedAt: Date;
}

export interface TokenPair {
  accessToken: string;
  accessTokenExpiresAt: Date;
  refreshToken: string;
  refreshTokenExpiresAt: Date;
}

/** A public signing key in JWK form (EC P-256). */
export interface PublicJwk {
  kid: string;
  kty: string;
  crv: string;
  x: string;
  y: string;
  alg: string;
  use: string;
}
