import { outboxRow } from "@dispatch/events";
import { OrderStatus } from "@dispatch/gen/dispatch/orders/v1/orders_pb.ts";
import type { OutboxEvent } from "../domain/ports.ts";

/** The outbox row for a domain event: a dispatch.events.v1.Event from source "orders". */
export function orderEventRow(e: OutboxEvent) {
  return outboxRow({
    id: e.id,
    source: "orders",
    subject: e.orderId,
    payload:
      e.type === "OrderPlaced"
        ? {
            case: "orderPlaced",
            value: {
              orderId: e.orderId,
              userId: e.userId,
              restaurantId: e.restaurantId,
              total: { currencyCode: e.total.currencyCode, amountMinor: BigInt(e.total.amountMinor) },
            },
          }
        : {
            case: "orderStatusChanged",
            value: {
              orderId: e.orderId,
              userId: e.userId,
              previousStatus: OrderStatus[e.previousStatus],
              status: OrderStatus[e.status],
              reason: e.reason,
            },
          },
  });
}
