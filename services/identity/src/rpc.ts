import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  IdentityService,
  Platform as ProtoPlatform,
} from "@dispatch/gen/dispatch/identity/v1/identity_pb.ts";
import type { ServiceImpl } from "@dispatch/runtime";
import type { Device, Platform, TokenPair, User } from "./domain/model.ts";
import type { Identity } from "./domain/use-cases.ts";

/** The proto adapter: request -> use case -> response. */
export function identityRpc(
  identity: Identity,
): [typeof IdentityService, ServiceImpl<typeof IdentityService>] {
  return [
    IdentityService,
    {
      async signUp(req) {
        const r = await identity.signUp({
          email: req.email,
          password: req.password,
          displayName: req.displayName,
        });
        return { user: userMsg(r.user), tokens: tokensMsg(r.tokens) };
      },
      async signIn(req) {
        const r = await identity.signIn({ email: req.email, password: req.password });
        return { user: userMsg(r.user), tokens: tokensMsg(r.tokens) };
      },
      async refreshToken(req) {
        return { tokens: tokensMsg(await identity.refresh(req.refreshToken)) };
      },
      async signOut(req) {
        await identity.signOut(req.refreshToken);
        return {};
      },
      getJwks() {
        return { keys: identity.publicKeys() };
      },
      async getUser(req) {
        return { user: userMsg(await identity.getUser(req.userId)) };
      },
      async registerDevice(req) {
        const platform =
          req.platform === ProtoPlatform.UNSPECIFIED
            ? undefined
            : (ProtoPlatform[req.platform] as Platform | undefined);
        const device = await identity.registerDevice({
          userId: req.userId,
          deviceId: req.deviceId,
          platform,
          pushToken: req.pushToken,
        });
        return { device: deviceMsg(device) };
      },
      async unregisterDevice(req) {
        await identity.unregisterDevice(req.userId, req.deviceId);
        return {};
      },
      async listDevices(req) {
        return { devices: (await identity.listDevices(req.userId)).map(deviceMsg) };
      },
    },
  ];
}

function userMsg(u: User) {
  return { id: u.id, email: u.email, displayName: u.displayName, createTime: timestampFromDate(u.createdAt) };
}

function tokensMsg(t: TokenPair) {
  return {
    accessToken: t.accessToken,
    accessTokenExpireTime: timestampFromDate(t.accessTokenExpiresAt),
    refreshToken: t.refreshToken,
    refreshTokenExpireTime: timestampFromDate(t.refreshTokenExpiresAt),
  };
}

function deviceMsg(d: Device) {
  return {
    deviceId: d.deviceId,
    userId: d.userId,
    platform: ProtoPlatform[d.platform],
    pushToken: d.pushToken,
    updateTime: timestampFromDate(d.updatedAt),
  };
}
