import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  doublePrecision,
  index,
  integer,
  pgTable,
  text,
  timestamp,
} from "drizzle-orm/pg-core";

export const restaurants = pgTable(
  "restaurants",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    description: text("description").notNull().default(""),
    cuisine: text("cuisine").notNull(),
    addressLine1: text("address_line1").notNull(),
    city: text("city").notNull(),
    postalCode: text("postal_code").notNull(),
    countryCode: text("country_code").notNull(),
    latitude: doublePrecision("latitude").notNull(),
    longitude: doublePrecision("longitude").notNull(),
    ratingTenths: integer("rating_tenths").notNull().default(0),
    etaMinutes: integer("eta_minutes").notNull(),
    deliveryFeeMinor: bigint("delivery_fee_minor", { mode: "number" }).notNull(),
    currencyCode: text("currency_code").notNull(),
    open: boolean("open").notNull().default(true),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().default(sql`now()`),
  },
  (t) => [
    index("restaurants_name_id_idx").on(t.name, t.id),
    index("restaurants_cuisine_name_idx").on(t.cuisine, t.name, t.id),
  ],
);

export const menuItems = pgTable(
  "menu_items",
  {
    id: text("id").primaryKey(),
    restaurantId: text("restaurant_id")
      .notNull()
      .references(() => restaurants.id),
    name: text("name").notNull(),
    description: text("description").notNull().default(""),
    category: text("category").notNull(),
    position: integer("position").notNull(),
    priceMinor: bigint("price_minor", { mode: "number" }).notNull(),
    currencyCode: text("currency_code").notNull(),
    available: boolean("available").notNull().default(true),
  },
  (t) => [index("menu_items_restaurant_position_idx").on(t.restaurantId, t.position)],
);

export const schema = { restaurants, menuItems };
