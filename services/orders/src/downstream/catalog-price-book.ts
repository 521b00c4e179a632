import { Code, ConnectError } from "@connectrpc/connect";
import type { Client } from "@dispatch/client";
import type { CatalogService } from "@dispatch/gen/dispatch/catalog/v1/catalog_pb.ts";
import { restaurantNotFound } from "../domain/errors.ts";
import type { PriceBook } from "../domain/ports.ts";

/** Prices order lines with catalog's BatchGetMenuItems over gRPC (deadline and breaker from packages/client). */
export class CatalogPriceBook implements PriceBook {
  constructor(private readonly catalog: Client<typeof CatalogService>) {}

  async priceItems(restaurantId: string, menuItemIds: readonly string[]) {
    let res: Awaited<ReturnType<Client<typeof CatalogService>["batchGetMenuItems"]>>;
    try {
      res = await this.catalog.batchGetMenuItems({ restaurantId, menuItemIds: [...menuItemIds] });
    } catch (err) {
      if (err instanceof ConnectError && err.code === Code.NotFound) throw restaurantNotFound(restaurantId);
      throw err;
    }
    const r = res.restaurant;
    if (!r) throw new Error("catalog returned no restaurant");
    const money = (m: { currencyCode: string; amountMinor: bigint } | undefined) => ({
      currencyCode: m?.currencyCode ?? "",
      amountMinor: Number(m?.amountMinor ?? 0n),
    });
    return {
      restaurant: { id: r.id, name: r.name, open: r.open, deliveryFee: money(r.deliveryFee) },
      items: res.items.map((i) => ({
        id: i.id,
        name: i.name,
        price: money(i.price),
        available: i.available,
      })),
      missing: res.missingMenuItemIds,
    };
  }
}
