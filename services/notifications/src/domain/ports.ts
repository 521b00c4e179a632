import type { DeliveryOutcome, DeviceTarget, Notification, NotificationStatus } from "./push.ts";

export interface NewNotification {
  id: string;
  userId: string;
  title: string;
  body: string;
  data: Record<string, string>;
  requestHash: string;
}

export interface ClaimedJob {
  id: string;
  userId: string;
  title: string;
  body: string;
  data: Record<string, string>;
  attempts: number;
  /** Devices this notification already reached in earlier attempts (not sent again). */
  delivered: Set<string>;
}

export interface AttemptRecord {
  device: DeviceTarget;
  outcome: DeliveryOutcome;
}

/** The queue and its delivery log; implemented by the store. */
export interface NotificationsRepository {
  /** Queues it once per id; returns the stored one and the hash it was first queued with. */
  enqueue(n: NewNotification): Promise<{ notification: Notification; requestHash: string }>;
  get(id: string): Promise<Notification | undefined>;
  list(
    userId: string,
    limit: number,
    before: { createdAt: Date; id: string } | undefined,
  ): Promise<Notification[]>;
  /** Leases up to `limit` due jobs (FOR UPDATE SKIP LOCKED), so workers and replicas never share one. */
  claim(limit: number, leaseMs: number): Promise<ClaimedJob[]>;
  /** Jobs waiting to be sent (QUEUED, due now or later). */
  queueDepth(): Promise<number>;
  /** Writes the attempt's deliveries and the job's next state together. */
  record(
    jobId: string,
    attempts: AttemptRecord[],
    next: { status: NotificationStatus; retryInMs?: number; error?: string },
  ): Promise<void>;
}

/** Who has which devices; identity's registry. */
export interface DeviceDirectory {
  list(userId: string): Promise<DeviceTarget[]>;
  unregister(userId: string, deviceId: string): Promise<void>;
}
