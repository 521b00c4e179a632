import { Code } from "@connectrpc/connect";
import { ErrorReason } from "@dispatch/gen/dispatch/orders/v1/orders_pb.ts";
import { DispatchError } from "@dispatch/runtime";

const domain = "orders.dispatch";
const reason = (r: ErrorReason) => ErrorReason[r];

export function orderNotFound(id: string): DispatchError {
  return new DispatchError(Code.NotFound, `order ${id} not found`, {
    reason: reason(ErrorReason.ORDER_NOT_FOUND),
    domain,
    metadata: { order_id: id },
  });
}

export function restaurantNotFound(id: string): DispatchError {
  return new DispatchError(Code.NotFound, `restaurant ${id} not found`, {
    reason: reason(ErrorReason.RESTAURANT_NOT_FOUND),
    domain,
    metadata: { restaurant_id: id },
  });
}

export function restaurantClosed(id: string): DispatchError {
  return new DispatchError(Code.FailedPrecondition, `restaurant ${id} is not taking orders right now`, {
    reason: reason(ErrorReason.RESTAURANT_CLOSED),
    domain,
    metadata: { restaurant_id: id },
  });
}

export function menuItemsNotFound(
  violations: { field: string; description: string }[],
  ids: string[],
): DispatchError {
  return new DispatchError(Code.InvalidArgument, `menu items not found: ${ids.join(", ")}`, {
    reason: reason(ErrorReason.MENU_ITEM_NOT_FOUND),
    domain,
    metadata: { menu_item_ids: ids.join(",") },
    fieldViolations: violations,
  });
}

export function menuItemsUnavailable(ids: string[]): DispatchError {
  return new DispatchError(Code.FailedPrecondition, `menu items sold out: ${ids.join(", ")}`, {
    reason: reason(ErrorReason.MENU_ITEM_UNAVAILABLE),
    domain,
    metadata: { menu_item_ids: ids.join(",") },
  });
}

export function invalidTransition(orderId: string, from: string, to: string): DispatchError {
  return new DispatchError(Code.FailedPrecondition, `order ${orderId} cannot move from ${from} to ${to}`, {
    reason: reason(ErrorReason.INVALID_STATUS_TRANSITION),
    domain,
    metadata: { order_id: orderId, from, to },
  });
}

export function requestIdReused(requestId: string): DispatchError {
  return new DispatchError(
    Code.FailedPrecondition,
    `request_id ${requestId} was already used for a different order`,
    {
      reason: reason(ErrorReason.REQUEST_ID_REUSED),
      domain,
      metadata: { request_id: requestId },
    },
  );
}
