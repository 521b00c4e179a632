import { FieldViolations } from "@dispatch/runtime";
import type { CatalogRepository, GeoPoint, MenuItem, Restaurant } from "./catalog.ts";
import { invalidPageToken, restaurantNotFound } from "./errors.ts";
import { decodePageToken, encodePageToken } from "./page-token.ts";

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;
export const MAX_BATCH_ITEMS = 100;

export interface ListRestaurantsQuery {
  pageSize: number;
  pageToken: string;
  cuisine: string;
  near: GeoPoint | undefined;
}

export class Catalog {
  constructor(private readonly repo: CatalogRepository) {}

  async listRestaurants(
    q: ListRestaurantsQuery,
  ): Promise<{ restaurants: Restaurant[]; nextPageToken: string }> {
    const v = new FieldViolations();
    if (q.pageSize < 0 || q.pageSize > MAX_PAGE_SIZE)
      v.add("page_size", `must be between 0 and ${MAX_PAGE_SIZE}`);
    if (q.cuisine.length > 64) v.add("cuisine", "must be at most 64 characters");
    if (q.near) checkGeoPoint(v, "near", q.near);
    v.throwIfAny();

    const limit = q.pageSize || DEFAULT_PAGE_SIZE;
    const cursor = q.pageToken
      ? decodePageToken(q.pageToken, { cuisine: q.cuisine, near: q.near })
      : undefined;
    if (q.pageToken && !cursor) throw invalidPageToken();
    const cuisine = q.cuisine || undefined;

    // One extra row tells whether another page exists without a count query.
    if (q.near) {
      const offset = cursor?.kind === "near" ? cursor.offset : 0;
      const rows = await this.repo.listByDistance({ cuisine, near: q.near, offset, limit: limit + 1 });
      const more = rows.length > limit;
      return {
        restaurants: rows.slice(0, limit),
        nextPageToken: more
          ? encodePageToken({
              kind: "near",
              cuisine: q.cuisine,
              lat: q.near.latitude,
              lng: q.near.longitude,
              offset: offset + limit,
            })
          : "",
      };
    }
    const after = cursor?.kind === "name" ? { name: cursor.name, id: cursor.id } : undefined;
    const rows = await this.repo.listByName({ cuisine, after, limit: limit + 1 });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      restaurants: page,
      nextPageToken:
        rows.length > limit && last
          ? encodePageToken({ kind: "name", cuisine: q.cuisine, name: last.name, id: last.id })
          : "",
    };
  }

  async getRestaurant(id: string): Promise<Restaurant> {
    requireId("restaurant_id", id);
    const restaurant = await this.repo.getRestaurant(id);
    if (!restaurant) throw restaurantNotFound(id);
    return restaurant;
  }

  async getMenu(restaurantId: string): Promise<MenuItem[]> {
    requireId("restaurant_id", restaurantId);
    const items = await this.repo.getMenu(restaurantId);
    if (items.length === 0 && !(await this.repo.getRestaurant(restaurantId)))
      throw restaurantNotFound(restaurantId);
    return items;
  }

  /** Current price and availability of the requested items, for pricing an order. */
  async batchGetMenuItems(
    restaurantId: string,
    ids: readonly string[],
  ): Promise<{ restaurant: Restaurant; items: MenuItem[]; missing: string[] }> {
    const v = new FieldViolations();
    if (!restaurantId) v.add("restaurant_id", "is required");
    if (ids.length === 0) v.add("menu_item_ids", "must name at least one item");
    if (ids.length > MAX_BATCH_ITEMS) v.add("menu_item_ids", `must name at most ${MAX_BATCH_ITEMS} items`);
    ids.forEach((id, i) => {
      if (!id) v.add(`menu_item_ids[${i}]`, "must not be empty");
    });
    v.throwIfAny();

    const read = await this.repo.getRestaurantWithItems(restaurantId, [...new Set(ids)]);
    if (!read) throw restaurantNotFound(restaurantId);
    const { restaurant } = read;
    const found = new Map(read.items.map((i) => [i.id, i]));
    const items: MenuItem[] = [];
    const missing: string[] = [];
    for (const id of ids) {
      const item = found.get(id);
      if (item) items.push(item);
      else missing.push(id);
    }
    return { restaurant, items, missing };
  }
}

function requireId(field: string, value: string): void {
  if (!value) {
    const v = new FieldViolations();
    v.add(field, "is required");
    v.throwIfAny();
  }
}

function checkGeoPoint(v: FieldViolations, field: string, p: GeoPoint): void {
  if (!(p.latitude >= -90 && p.latitude <= 90)) v.add(`${field}.latitude`, "must be between -90 and 90");
  if (!(p.longitude >= -180 && p.longitude <= 180))
    v.add(`${field}.longitude`, "must be between -180 and 180");
}
