import type { DeliveryOutcome, DeviceTarget, PushMessage, PushProvider } from "../domain/push.ts";

/** The local default: "delivers" every push by remembering it (the delivery log shows it too). */
export class RecordingProvider implements PushProvider {
  readonly sent: { device: DeviceTarget; message: PushMessage }[] = [];

  async send(devices: DeviceTarget[], message: PushMessage): Promise<DeliveryOutcome[]> {
    for (const device of devices) this.sent.push({ device, message });
    return devices.map(() => ({ kind: "delivered" as const }));
  }
}
