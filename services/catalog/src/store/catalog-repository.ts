import { type Database, jsonValue } from "@dispatch/db";
import { and, asc, eq, gt, or, sql } from "drizzle-orm";
import type { CatalogRepository, GeoPoint, MenuItem, Restaurant } from "../domain/catalog.ts";
import { menuItems, restaurants, type schema } from "./schema.ts";

type Db = Database<typeof schema>["db"];

export class PgCatalogRepository implements CatalogRepository {
  constructor(private readonly db: Db) {}

  async listByName(q: {
    cuisine?: string;
    after?: { name: string; id: string };
    limit: number;
  }): Promise<Restaurant[]> {
    const after = q.after
      ? or(
          gt(restaurants.name, q.after.name),
          and(eq(restaurants.name, q.after.name), gt(restaurants.id, q.after.id)),
        )
      : undefined;
    const rows = await this.db
      .select()
      .from(restaurants)
      .where(and(q.cuisine ? eq(restaurants.cuisine, q.cuisine) : undefined, after))
      .orderBy(asc(restaurants.name), asc(restaurants.id))
      .limit(q.limit);
    return rows.map(toRestaurant);
  }

  async listByDistance(q: {
    cuisine?: string;
    near: GeoPoint;
    offset: number;
    limit: number;
  }): Promise<Restaurant[]> {
    // Equirectangular approximation: exact enough to rank restaurants within a city.
    const distance = sql`power(${restaurants.latitude} - ${q.near.latitude}, 2) + power((${restaurants.longitude} - ${q.near.longitude}) * cos(radians(${q.near.latitude})), 2)`;
    const rows = await this.db
      .select()
      .from(restaurants)
      .where(q.cuisine ? eq(restaurants.cuisine, q.cuisine) : undefined)
      .orderBy(distance, asc(restaurants.id))
      .offset(q.offset)
      .limit(q.limit);
    return rows.map(toRestaurant);
  }

  async getRestaurant(id: string): Promise<Restaurant | undefined> {
    const [row] = await this.db.select().from(restaurants).where(eq(restaurants.id, id)).limit(1);
    return row && toRestaurant(row);
  }

  async getMenu(restaurantId: string): Promise<MenuItem[]> {
    const rows = await this.db
      .select()
      .from(menuItems)
      .where(eq(menuItems.restaurantId, restaurantId))
      .orderBy(asc(menuItems.position), asc(menuItems.id));
    return rows.map(toMenuItem);
  }

  /** Orders prices every order with this: one statement, built once, the ids as one array parameter. */
  async getRestaurantWithItems(
    restaurantId: string,
    ids: readonly string[],
  ): Promise<{ restaurant: Restaurant; items: MenuItem[] } | undefined> {
    this.withItems ??= this.buildWithItems();
    const [row] = await this.withItems.execute({ restaurantId, ids: [...ids] });
    if (!row) return undefined;
    return { restaurant: toRestaurant(row.restaurant), items: row.items.map(itemOf) };
  }

  private withItems: ReturnType<PgCatalogRepository["buildWithItems"]> | undefined;

  /**
   * The restaurant's row once, the asked-for items folded into a JSON array by PostgreSQL. A join (a row
   * per item, every restaurant column repeated on each) cost catalog more CPU per order to parse and map
   * (docs/BENCHMARKS-ROUNDS.md, twelfth round).
   */
  private buildWithItems() {
    const m = menuItems;
    // Qualified by hand: drizzle writes a single-table select's columns unqualified, and inside the
    // subquery a bare "id" would be the menu item's.
    const restaurantId = sql`${restaurants}.${sql.identifier(restaurants.id.name)}`;
    const item = sql`json_build_array(${m.id}, ${m.restaurantId}, ${m.name}, ${m.description}, ${m.category},
      ${m.currencyCode}, ${m.priceMinor}, ${m.available})`;
    const items = sql<ItemTuple[]>`(select coalesce(json_agg(${item}), '[]'::json) from ${m}
      where ${m.restaurantId} = ${restaurantId} and ${m.id} = any(${sql.placeholder("ids")}::text[]))`.mapWith(
      jsonValue<ItemTuple[]>,
    );
    return this.db
      .select({ restaurant: restaurants, items })
      .from(restaurants)
      .where(eq(restaurants.id, sql.placeholder("restaurantId")))
      .prepare("catalog_restaurant_with_items");
  }
}

/** A menu item as the priced-order query folds it. */
type ItemTuple = [string, string, string, string, string, string, number | string, boolean];

function itemOf([
  id,
  restaurantId,
  name,
  description,
  category,
  currencyCode,
  price,
  available,
]: ItemTuple): MenuItem {
  return {
    id,
    restaurantId,
    name,
    description,
    category,
    price: { currencyCode, amountMinor: Number(price) },
    available,
  };
}

function toRestaurant(r: typeof restaurants.$inferSelect): Restaurant {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    cuisine: r.cuisine,
    address: {
      line1: r.addressLine1,
      city: r.city,
      postalCode: r.postalCode,
      countryCode: r.countryCode,
      location: { latitude: r.latitude, longitude: r.longitude },
    },
    ratingTenths: r.ratingTenths,
    etaMinutes: r.etaMinutes,
    deliveryFee: { currencyCode: r.currencyCode, amountMinor: r.deliveryFeeMinor },
    open: r.open,
    createdAt: r.createdAt,
  };
}

function toMenuItem(m: typeof menuItems.$inferSelect): MenuItem {
  return {
    id: m.id,
    restaurantId: m.restaurantId,
    name: m.name,
    description: m.description,
    category: m.category,
    price: { currencyCode: m.currencyCode, amountMinor: m.priceMinor },
    available: m.available,
  };
}
