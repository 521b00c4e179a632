import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type OrderSchema,
  OrdersService,
  OrderStatus as ProtoStatus,
} from "@dispatch/gen/dispatch/orders/v1/orders_pb.ts";
import type { ServiceImpl } from "@dispatch/runtime";
import type { Money, Order, OrderStatus } from "./domain/order.ts";
import type { Orders } from "./domain/use-cases.ts";

/** The proto adapter: request -> use case -> response. Errors are DispatchErrors raised by the domain. */
export function ordersRpc(orders: Orders): [typeof OrdersService, ServiceImpl<typeof OrdersService>] {
  return [
    OrdersService,
    {
      async placeOrder(req) {
        const a = req.deliveryAddress;
        const order = await orders.placeOrder({
          requestId: req.requestId,
          userId: req.userId,
          restaurantId: req.restaurantId,
          items: req.items.map((i) => ({ menuItemId: i.menuItemId, quantity: i.quantity })),
          deliveryAddress: a && {
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            postalCode: a.postalCode,
            countryCode: a.countryCode,
            ...(a.location
              ? { location: { latitude: a.location.latitude, longitude: a.location.longitude } }
              : {}),
          },
          note: req.note,
        });
        return { order: orderMsg(order) };
      },
      async getOrder(req) {
        return { order: orderMsg(await orders.getOrder(req.orderId)) };
      },
      async listActiveOrders(req) {
        const list = await orders.listActiveOrders(req.userId);
        return { orders: list.map(orderMsg) };
      },
      async updateOrderStatus(req) {
        const status = req.status === ProtoStatus.UNSPECIFIED ? undefined : domainStatus(req.status);
        return { order: orderMsg(await orders.updateStatus(req.orderId, status, req.reason)) };
      },
    },
  ];
}

/** Proto enum -> domain status; values unknown to this build count as missing. */
function domainStatus(s: ProtoStatus): OrderStatus | undefined {
  const name = ProtoStatus[s] as string | undefined;
  return name === undefined || name === "UNSPECIFIED" ? undefined : (name as OrderStatus);
}

function money(m: Money) {
  return { currencyCode: m.currencyCode, amountMinor: BigInt(m.amountMinor) };
}

function orderMsg(o: Order): MessageInitShape<typeof OrderSchema> {
  return {
    id: o.id,
    userId: o.userId,
    restaurantId: o.restaurantId,
    restaurantName: o.restaurantName,
    status: ProtoStatus[o.status],
    items: o.items.map((i) => ({
      menuItemId: i.menuItemId,
      name: i.name,
      quantity: i.quantity,
      unitPrice: money(i.unitPrice),
      lineTotal: money(i.lineTotal),
    })),
    subtotal: money(o.subtotal),
    deliveryFee: money(o.deliveryFee),
    total: money(o.total),
    deliveryAddress: o.deliveryAddress,
    note: o.note,
    createTime: timestampFromDate(o.createdAt),
    updateTime: timestampFromDate(o.updatedAt),
    statusHistory: o.statusHistory.map((h) => ({
      status: ProtoStatus[h.status],
      changeTime: timestampFromDate(h.changedAt),
      reason: h.reason,
    })),
  };
}
