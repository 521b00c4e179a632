import type { Client } from "@dispatch/client";
import { type IdentityService, Platform } from "@dispatch/gen/dispatch/identity/v1/identity_pb.ts";
import type { DeviceDirectory } from "../domain/ports.ts";
import type { DeviceTarget } from "../domain/push.ts";

/** identity's device registry over gRPC. */
export class IdentityDevices implements DeviceDirectory {
  constructor(private readonly identity: Client<typeof IdentityService>) {}

  async list(userId: string): Promise<DeviceTarget[]> {
    const { devices } = await this.identity.listDevices({ userId });
    return devices
      .filter((d) => d.platform === Platform.IOS || d.platform === Platform.ANDROID)
      .map((d) => ({
        deviceId: d.deviceId,
        platform: d.platform === Platform.IOS ? "ios" : "android",
        pushToken: d.pushToken,
      }));
  }

  async unregister(userId: string, deviceId: string): Promise<void> {
    await this.identity.unregisterDevice({ userId, deviceId });
  }
}
