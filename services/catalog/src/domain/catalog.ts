/** Catalog use cases: browsing restaurants and menus, and pricing items for orders. */

export interface Money {
  currencyCode: string;
  amountMinor: number;
}

export interface GeoPoint {
  latitude: number;
  longitude: number;
}

export interface Restaurant {
  id: string;
  name: string;
  description: string;
  cuisine: string;
  address: {
    line1: string;
    city: string;
    postalCode: string;
    countryCode: string;
    location: GeoPoint;
  };
  ratingTenths: number;
  etaMinutes: number;
  deliveryFee: Money;
  open: boolean;
  createdAt: Date;
}

export interface MenuItem {
  id: string;
  restaurantId: string;
  name: string;
  description: string;
  category: string;
  price: Money;
  available: boolean;
}

/** Where restaurants are read from; implemented by the store. */
export interface CatalogRepository {
  /** Restaurants after `cursor` (ordered by name, id), at most `limit`. */
  listByName(query: {
    cuisine?: string;
    after?: { name: string; id: string };
    limit: number;
  }): Promise<Restaurant[]>;
  /** Restaurants ordered by distance from `near`, skipping `offset`. */
  listByDistance(query: {
    cuisine?: string;
    near: GeoPoint;
    offset: number;
    limit: number;
  }): Promise<Restaurant[]>;
  getRestaurant(id: string): Promise<Restaurant | undefined>;
  /** Every item of a restaurant in menu order. */
  getMenu(restaurantId: string): Promise<MenuItem[]>;
  /** The restaurant and those of `ids` on its menu, in one read; undefined when there is no such restaurant. */
  getRestaurantWithItems(
    restaurantId: string,
    ids: readonly string[],
  ): Promise<{ restaurant: Restaurant; items: MenuItem[] } | undefined>;
}
