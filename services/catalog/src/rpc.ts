import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  CatalogService,
  type MenuItemSchema,
  type RestaurantSchema,
} from "@dispatch/gen/dispatch/catalog/v1/catalog_pb.ts";
import type { ServiceImpl } from "@dispatch/runtime";
import type { MenuItem, Money, Restaurant } from "./domain/catalog.ts";
import type { Catalog } from "./domain/use-cases.ts";

/** The proto adapter: request -> use case -> response. Errors are DispatchErrors raised by the domain. */
export function catalogRpc(catalog: Catalog): [typeof CatalogService, ServiceImpl<typeof CatalogService>] {
  return [
    CatalogService,
    {
      async listRestaurants(req) {
        const page = await catalog.listRestaurants({
          pageSize: req.pageSize,
          pageToken: req.pageToken,
          cuisine: req.cuisine,
          near: req.near,
        });
        return { restaurants: page.restaurants.map(restaurantMsg), nextPageToken: page.nextPageToken };
      },
      async getRestaurant(req) {
        return { restaurant: restaurantMsg(await catalog.getRestaurant(req.restaurantId)) };
      },
      async getMenu(req) {
        const items = await catalog.getMenu(req.restaurantId);
        return { restaurantId: req.restaurantId, items: items.map(menuItemMsg) };
      },
      async batchGetMenuItems(req) {
        const r = await catalog.batchGetMenuItems(req.restaurantId, req.menuItemIds);
        return {
          restaurant: restaurantMsg(r.restaurant),
          items: r.items.map(menuItemMsg),
          missingMenuItemIds: r.missing,
        };
      },
    },
  ];
}

function money(m: Money) {
  return { currencyCode: m.currencyCode, amountMinor: BigInt(m.amountMinor) };
}

function restaurantMsg(r: Restaurant): MessageInitShape<typeof RestaurantSchema> {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    cuisine: r.cuisine,
    address: {
      line1: r.address.line1,
      city: r.address.city,
      postalCode: r.address.postalCode,
      countryCode: r.address.countryCode,
      location: r.address.location,
    },
    ratingTenths: r.ratingTenths,
    etaMinutes: r.etaMinutes,
    deliveryFee: money(r.deliveryFee),
    open: r.open,
    createTime: timestampFromDate(r.createdAt),
  };
}

function menuItemMsg(m: MenuItem): MessageInitShape<typeof MenuItemSchema> {
  return {
    id: m.id,
    restaurantId: m.restaurantId,
    name: m.name,
    description: m.description,
    category: m.category,
    price: money(m.price),
    available: m.available,
  };
}
