import type { Event } from "@dispatch/gen/dispatch/events/v1/events_pb.ts";
import { OrderStatus } from "@dispatch/gen/dispatch/orders/v1/orders_pb.ts";
import type { SendInput } from "./use-cases.ts";

const statusText: Partial<Record<OrderStatus, [string, string]>> = {
  [OrderStatus.PLACED]: ["Order confirmed", "We sent your order to the restaurant."],
  [OrderStatus.ACCEPTED]: ["Order accepted", "The restaurant accepted your order."],
  [OrderStatus.PREPARING]: ["Being prepared", "The kitchen is preparing your order."],
  [OrderStatus.OUT_FOR_DELIVERY]: ["On its way", "Your order is out for delivery."],
  [OrderStatus.DELIVERED]: ["Delivered", "Enjoy your meal!"],
  [OrderStatus.CANCELLED]: ["Order cancelled", "Your order was cancelled."],
  [OrderStatus.REJECTED]: ["Order declined", "The restaurant could not take your order."],
};

/** Which events become pushes, and what they say. The event id is the notification id (deduplication). */
export function notificationFor(event: Event): SendInput | undefined {
  const p = event.payload;
  if (p.case === "orderStatusChanged") {
    const text = statusText[p.value.status];
    if (!text) return undefined;
    return {
      notificationId: event.id,
      userId: p.value.userId,
      title: text[0],
      body: text[1],
      data: { order_id: p.value.orderId },
    };
  }
  if (p.case === "paymentFailed") {
    return {
      notificationId: event.id,
      userId: p.value.userId,
      title: "Payment failed",
      body: p.value.failureReason || "Your payment did not go through.",
      data: { order_id: p.value.orderId, payment_id: p.value.paymentId },
    };
  }
  return undefined;
}
