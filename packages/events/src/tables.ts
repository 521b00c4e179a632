import { sql } from "drizzle-orm";
import { bigserial, customType, index, integer, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({ dataType: () => "bytea" });

/**
 * Events waiting for the relay, written in the same transaction as the change they describe. A service
 * re-exports this table from its schema so drizzle-kit puts it in the service's own migrations.
 */
export const outbox = pgTable(
  "outbox",
  {
    id: uuid("id").primaryKey(),
    /** Insertion order: events of one aggregate are inserted under its row lock, so seq orders them. */
    seq: bigserial("seq", { mode: "number" }).notNull(),
    eventType: text("event_type").notNull(),
    subject: text("subject").notNull(),
    /** Serialized dispatch.events.v1.Event. */
    payload: bytea("payload").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().default(sql`now()`),
    publishedAt: timestamp("published_at", { withTimezone: true }),
    attempts: integer("attempts").notNull().default(0),
    /** Subscribers that handled the event while another refused it: its retries skip them. */
    deliveredTo: text("delivered_to").array().notNull().default(sql`'{}'::text[]`),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true }).notNull().default(sql`now()`),
    lastError: text("last_error"),
  },
  (t) => [
    index("outbox_pending_idx").on(t.seq).where(sql`${t.publishedAt} is null`),
    index("outbox_subject_pending_idx").on(t.subject, t.seq).where(sql`${t.publishedAt} is null`),
    /** Published events by age: how the relay finds those past their retention to delete them. */
    index("outbox_published_idx").on(t.publishedAt).where(sql`${t.publishedAt} is not null`),
  ],
);

/** Event ids a consumer has applied: the deduplication that turns at-least-once into exactly-once effects. */
export const processedEvents = pgTable(
  "processed_events",
  {
    eventId: uuid("event_id").primaryKey(),
    processedAt: timestamp("processed_at", { withTimezone: true }).notNull().default(sql`now()`),
  },
  /** By age: how ProcessedEventsRetention finds the ids past their retention. */
  (t) => [index("processed_events_processed_at_idx").on(t.processedAt)],
);
