/** Push notifications: what is sent, to which devices, and what became of each. Pure TypeScript. */

export interface PushMessage {
  title: string;
  body: string;
  data: Record<string, string>;
}

export interface DeviceTarget {
  deviceId: string;
  platform: "ios" | "android";
  pushToken: string;
}

export type DeliveryOutcome =
  | { kind: "delivered" }
  /** The provider says the token is dead: the device is unregistered. */
  | { kind: "invalid_token"; error: string }
  /** Worth retrying later (rate limit, provider unavailable). */
  | { kind: "transient"; error: string }
  | { kind: "failed"; error: string };

/** A push provider: FCM, APNs, or the local recorder. One outcome per device, in order. */
export interface PushProvider {
  send(devices: DeviceTarget[], message: PushMessage): Promise<DeliveryOutcome[]>;
  close?(): Promise<void>;
}

export type NotificationStatus = "QUEUED" | "SENT" | "PARTIALLY_SENT" | "FAILED" | "NO_DEVICES";

export interface Delivery {
  deviceId: string;
  platform: string;
  outcome: "DELIVERED" | "TOKEN_INVALID" | "FAILED";
  error: string;
  attemptedAt: Date;
}

export interface Notification {
  id: string;
  userId: string;
  title: string;
  body: string;
  data: Record<string, string>;
  status: NotificationStatus;
  attempts: number;
  deliveries: Delivery[];
  createdAt: Date;
  sentAt: Date | undefined;
}
