import { create, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { EventSchema } from "@dispatch/gen/dispatch/events/v1/events_pb.ts";
import { OrderStatus } from "@dispatch/gen/dispatch/orders/v1/orders_pb.ts";
import type { OutboxEvent } from "../domain/ports.ts";
import type { outbox } from "./schema.ts";

/** The outbox row for a domain event: its dispatch.events.v1.Event envelope, serialized. */
export function outboxRow(e: OutboxEvent): typeof outbox.$inferInsert {
  const event = create(EventSchema, {
    id: e.id,
    source: "orders",
    subject: e.orderId,
    occurTime: timestampNow(),
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
  return {
    id: e.id,
    eventType: e.type,
    subject: e.orderId,
    payload: Buffer.from(toBinary(EventSchema, event)),
  };
}
