import { outbox, processedEvents } from "@dispatch/events";
import { sql } from "drizzle-orm";
import {
  bigint,
  bigserial,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";
import type { Address } from "../domain/order.ts";

// The outbox (events this service publishes) and processed_events (events it consumed) live in its database.
export { outbox, processedEvents };

/** Orders' own copy of the restaurant names it has seen, so active orders are one local query. */
export const restaurants = pgTable("restaurants", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().default(sql`now()`),
});

export const orders = pgTable(
  "orders",
  {
    id: uuid("id").primaryKey(),
    requestId: text("request_id").notNull().unique(),
    requestHash: text("request_hash").notNull(),
    userId: text("user_id").notNull(),
    restaurantId: text("restaurant_id")
      .notNull()
      .references(() => restaurants.id),
    status: text("status").notNull(),
    currencyCode: text("currency_code").notNull(),
    subtotalMinor: bigint("subtotal_minor", { mode: "number" }).notNull(),
    deliveryFeeMinor: bigint("delivery_fee_minor", { mode: "number" }).notNull(),
    totalMinor: bigint("total_minor", { mode: "number" }).notNull(),
    deliveryAddress: jsonb("delivery_address").$type<Address>().notNull(),
    note: text("note").notNull().default(""),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().default(sql`now()`),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().default(sql`now()`),
  },
  (t) => [index("orders_user_status_created_idx").on(t.userId, t.status, t.createdAt)],
);

export const orderItems = pgTable(
  "order_items",
  {
    orderId: uuid("order_id")
      .notNull()
      .references(() => orders.id),
    lineNo: integer("line_no").notNull(),
    menuItemId: text("menu_item_id").notNull(),
    name: text("name").notNull(),
    quantity: integer("quantity").notNull(),
    unitPriceMinor: bigint("unit_price_minor", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.orderId, t.lineNo] })],
);

export const orderStatusHistory = pgTable(
  "order_status_history",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    orderId: uuid("order_id")
      .notNull()
      .references(() => orders.id),
    status: text("status").notNull(),
    reason: text("reason").notNull().default(""),
    changedAt: timestamp("changed_at", { withTimezone: true }).notNull().default(sql`now()`),
  },
  (t) => [index("order_status_history_order_idx").on(t.orderId, t.id)],
);

export const schema = { restaurants, orders, orderItems, orderStatusHistory, outbox, processedEvents };
