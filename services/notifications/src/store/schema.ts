import { outbox, processedEvents } from "@dispatch/events";
import { sql } from "drizzle-orm";
import { bigserial, index, integer, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

export { outbox, processedEvents };

/** The push queue: one row per notification; workers claim rows with FOR UPDATE SKIP LOCKED. */
export const notifications = pgTable(
  "notifications",
  {
    id: uuid("id").primaryKey(),
    userId: text("user_id").notNull(),
    title: text("title").notNull(),
    body: text("body").notNull(),
    data: jsonb("data").$type<Record<string, string>>().notNull(),
    /** Fingerprint of the request, so a reused notification id with other content is refused. */
    requestHash: text("request_hash").notNull(),
    status: text("status").notNull(),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true }).notNull().default(sql`now()`),
    lastError: text("last_error"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().default(sql`now()`),
    sentAt: timestamp("sent_at", { withTimezone: true }),
  },
  (t) => [
    index("notifications_queue_idx").on(t.nextAttemptAt).where(sql`${t.status} = 'QUEUED'`),
    index("notifications_user_idx").on(t.userId, t.createdAt),
  ],
);

/** The delivery log: every attempt at every device. */
export const deliveries = pgTable(
  "deliveries",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    notificationId: uuid("notification_id")
      .notNull()
      .references(() => notifications.id),
    deviceId: text("device_id").notNull(),
    platform: text("platform").notNull(),
    outcome: text("outcome").notNull(),
    error: text("error").notNull().default(""),
    attemptedAt: timestamp("attempted_at", { withTimezone: true }).notNull().default(sql`now()`),
  },
  (t) => [index("deliveries_notification_idx").on(t.notificationId)],
);

export const schema = { notifications, deliveries, outbox, processedEvents };
