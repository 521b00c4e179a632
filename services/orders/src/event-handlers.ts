import type { AnyTx } from "@dispatch/events";
import type { Event } from "@dispatch/gen/dispatch/events/v1/events_pb.ts";
import type { Logger } from "@dispatch/runtime";
import type { PriceBook } from "./domain/ports.ts";
import { Orders } from "./domain/use-cases.ts";
import { PgOrdersRepository } from "./store/orders-repository.ts";

/**
 * The events adapter: events from other services -> use cases, inside the transaction that records the
 * event as processed (so each effect happens once).
 */
export function ordersEventHandler(priceBook: PriceBook, logger: Logger) {
  return async (event: Event, tx: AnyTx): Promise<void> => {
    if (event.payload.case !== "paymentSucceeded") return;
    const { orderId, paymentId } = event.payload.value;
    const orders = new Orders(new PgOrdersRepository(tx as never), priceBook);
    if (!(await orders.markPaid(orderId, paymentId))) {
      logger.warn({ eventId: event.id, orderId, paymentId }, "payment succeeded for an unknown order");
    }
  };
}
