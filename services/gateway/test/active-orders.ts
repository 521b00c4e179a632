import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ListActiveOrdersResponseSchema, OrderStatus } from "@dispatch/gen/dispatch/orders/v1/orders_pb.ts";

/** Orders' ListActiveOrders reply, as orders encodes it. */
export function reply(orders: unknown[]): Uint8Array {
  return toBinary(
    ListActiveOrdersResponseSchema,
    create(ListActiveOrdersResponseSchema, { orders } as never),
  );
}

export const money = (minor: number | bigint, currencyCode = "EUR") => ({
  currencyCode,
  amountMinor: BigInt(minor),
});

/** One of orders' orders as the bench's user has them: five lines, every field set; `over` replaces fields. */
export function order(i: number, over: Record<string, unknown> = {}) {
  return {
    id: `0193b2a1-7c3e-7000-8000-${String(i).padStart(12, "0")}`,
    userId: "user-1",
    restaurantId: "rst-007",
    restaurantName: "Trattoria Da Marco",
    status: OrderStatus.PREPARING,
    items: [1, 2, 3, 4, 5].map((l) => ({
      menuItemId: `rst-007-item-0${l}`,
      name: `Dish ${l}`,
      quantity: 1 + (l % 2),
      unitPrice: money(500 + 100 * l),
      lineTotal: money((500 + 100 * l) * (1 + (l % 2))),
    })),
    subtotal: money(6400),
    deliveryFee: money(199),
    total: money(6599),
    deliveryAddress: {
      line1: `Torstrasse ${i}`,
      city: "Berlin",
      postalCode: "10119",
      countryCode: "DE",
      location: { latitude: 52.5291, longitude: 13.4017 },
    },
    note: "ring twice",
    createTime: timestampFromMs(1_764_000_000_000 + i),
    updateTime: timestampFromMs(1_764_000_100_000 + i),
    statusHistory: [{ status: OrderStatus.PLACED, changeTime: timestampFromMs(1_764_000_000_000) }],
    ...over,
  };
}

/** A small seeded generator, so a failing random case can be replayed. */
export function seeded(seed: number): (n: number) => number {
  return (n) => {
    seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff;
    return seed % n;
  };
}
