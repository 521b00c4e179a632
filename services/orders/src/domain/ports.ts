import type { Address, Money, Order, OrderItem, OrderStatus } from "./order.ts";

/** What orders needs from the catalog: current prices. Implemented over gRPC in src/downstream. */
export interface PriceBook {
  /** Throws a DispatchError NOT_FOUND when the restaurant does not exist. */
  priceItems(restaurantId: string, menuItemIds: readonly string[]): Promise<PricedItems>;
}

export interface PricedItems {
  restaurant: { id: string; name: string; open: boolean; deliveryFee: Money };
  items: { id: string; name: string; price: Money; available: boolean }[];
  missing: string[];
}

export interface NewOrder {
  id: string;
  requestId: string;
  requestHash: string;
  userId: string;
  restaurantId: string;
  restaurantName: string;
  items: OrderItem[];
  subtotal: Money;
  deliveryFee: Money;
  total: Money;
  deliveryAddress: Address;
  note: string;
  status: OrderStatus;
}

/**
 * A domain event, written to the outbox in the same transaction as the change it describes
 * (the store serializes it as a dispatch.events.v1.Event).
 */
export type OutboxEvent =
  | { id: string; type: "OrderPlaced"; orderId: string; userId: string; restaurantId: string; total: Money }
  | {
      id: string;
      type: "OrderStatusChanged";
      orderId: string;
      userId: string;
      previousStatus: OrderStatus;
      status: OrderStatus;
      reason: string;
    };

/** Where orders live; implemented by the store. */
export interface OrdersRepository {
  findByRequestId(requestId: string): Promise<{ order: Order; requestHash: string } | undefined>;
  /**
   * Stores the order, its items, its first status and the event atomically. Returns undefined when an
   * order with the same request id already exists (a concurrent duplicate won the race).
   */
  insert(order: NewOrder, event: (order: Order) => OutboxEvent): Promise<Order | undefined>;
  get(orderId: string): Promise<Order | undefined>;
  listActive(userId: string): Promise<Order[]>;
  /**
   * Locks the order, lets `decide` choose the next status, and stores it with its history row and
   * event in one transaction. `decide` returns undefined to change nothing.
   */
  updateStatus(
    orderId: string,
    decide: (order: Order) => { status: OrderStatus; reason: string; event: OutboxEvent } | undefined,
  ): Promise<Order | undefined>;
}
