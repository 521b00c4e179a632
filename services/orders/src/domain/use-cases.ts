import { createHash, randomUUID } from "node:crypto";
import { FieldViolations } from "@dispatch/runtime";
import {
  invalidTransition,
  menuItemsNotFound,
  menuItemsUnavailable,
  orderNotFound,
  requestIdReused,
  restaurantClosed,
} from "./errors.ts";
import {
  type Address,
  canTransition,
  type Money,
  type Order,
  type OrderItem,
  type OrderStatus,
} from "./order.ts";
import type { OrdersRepository, PriceBook, PricedItems } from "./ports.ts";

export const MAX_LINES = 50;
export const MAX_QUANTITY = 50;
export const MAX_NOTE = 500;
const REQUEST_ID = /^[A-Za-z0-9_-]{8,64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface PlaceOrderInput {
  requestId: string;
  userId: string;
  restaurantId: string;
  items: { menuItemId: string; quantity: number }[];
  deliveryAddress: Address | undefined;
  note: string;
}

export class Orders {
  constructor(
    private readonly repo: OrdersRepository,
    private readonly priceBook: PriceBook,
  ) {}

  /**
   * Prices the items with the catalog and stores the order. A repeated request id returns the order it
   * created, so a client may retry after a lost response; reusing it for a different order is refused.
   * A new order is not looked up first: the insert finds a repeated request id (ON CONFLICT), and a retry
   * that can no longer be priced (the catalog down, the restaurant closed, an item gone) is answered from
   * the store before the error is, so every retry still gets its order. A new order saves a round trip to
   * PostgreSQL; a retry, which is rare, asks the catalog first (docs/BENCHMARKS-ROUNDS.md, "Thirteenth round").
   */
  async placeOrder(input: PlaceOrderInput): Promise<Order> {
    validatePlaceOrder(input);
    const requestHash = hashRequest(input);
    let priced: PricedItems;
    try {
      priced = await this.priced(input);
    } catch (err) {
      // The store's own failure (down, or the call's deadline spent on the catalog) is not the answer:
      // the pricing error is, as it would be for a new order.
      const previous = await this.repo.findByRequestId(input.requestId).catch(() => undefined);
      if (previous) return sameRequest(previous, requestHash, input.requestId);
      throw err;
    }

    const byId = new Map(priced.items.map((i) => [i.id, i]));
    const currency = priced.restaurant.deliveryFee.currencyCode;
    const items: OrderItem[] = input.items.map((line) => {
      const item = byId.get(line.menuItemId)!;
      // Every price of one restaurant is in its currency; a mismatch is catalog data corruption.
      if (item.price.currencyCode !== currency)
        throw new Error(`item ${item.id} priced in ${item.price.currencyCode}`);
      return {
        menuItemId: item.id,
        name: item.name,
        quantity: line.quantity,
        unitPrice: item.price,
        lineTotal: { currencyCode: currency, amountMinor: item.price.amountMinor * line.quantity },
      };
    });
    const subtotal = sum(
      currency,
      items.map((i) => i.lineTotal),
    );
    const deliveryFee = priced.restaurant.deliveryFee;
    const total = sum(currency, [subtotal, deliveryFee]);

    const order = await this.repo.insert(
      {
        id: randomUUID(),
        requestId: input.requestId,
        requestHash,
        userId: input.userId,
        restaurantId: input.restaurantId,
        restaurantName: priced.restaurant.name,
        items,
        subtotal,
        deliveryFee,
        total,
        deliveryAddress: input.deliveryAddress!,
        note: input.note,
        status: "PENDING_PAYMENT",
      },
      (o) => ({
        id: randomUUID(),
        type: "OrderPlaced",
        orderId: o.id,
        userId: o.userId,
        restaurantId: o.restaurantId,
        total: o.total,
      }),
    );
    if (order) return order;
    // A concurrent call with the same request id committed first.
    const winner = await this.repo.findByRequestId(input.requestId);
    if (!winner) throw new Error(`order for request ${input.requestId} vanished`);
    return sameRequest(winner, requestHash, input.requestId);
  }

  /**
   * The catalog's prices for the order's items; throws when one is missing or unavailable, or the
   * restaurant is closed.
   */
  private async priced(input: PlaceOrderInput): Promise<PricedItems> {
    const ids = input.items.map((i) => i.menuItemId);
    const priced = await this.priceBook.priceItems(input.restaurantId, ids);
    if (priced.missing.length > 0) {
      const missing = new Set(priced.missing);
      const violations = input.items.flatMap((line, i) =>
        missing.has(line.menuItemId)
          ? [
              {
                field: `items[${i}].menu_item_id`,
                description: `no item ${line.menuItemId} on this restaurant's menu`,
              },
            ]
          : [],
      );
      throw menuItemsNotFound(violations, [...missing]);
    }
    if (!priced.restaurant.open) throw restaurantClosed(input.restaurantId);
    const unavailable = priced.items.filter((i) => !i.available).map((i) => i.id);
    if (unavailable.length > 0) throw menuItemsUnavailable(unavailable);
    return priced;
  }

  async getOrder(orderId: string): Promise<Order> {
    requireOrderId(orderId);
    const order = await this.repo.get(orderId);
    if (!order) throw orderNotFound(orderId);
    return order;
  }

  async listActiveOrders(userId: string): Promise<Order[]> {
    requireField("user_id", userId);
    return this.repo.listActive(userId);
  }

  /**
   * A payment for the order succeeded: PENDING_PAYMENT becomes PLACED. A repeat, or a payment for an order
   * that has moved on (cancelled meanwhile), changes nothing. Returns false when the order is unknown.
   */
  async markPaid(orderId: string, paymentId: string): Promise<boolean> {
    const order = await this.repo.updateStatus(orderId, (current) =>
      current.status !== "PENDING_PAYMENT"
        ? undefined
        : {
            status: "PLACED",
            reason: `paid (payment ${paymentId})`,
            event: {
              id: randomUUID(),
              type: "OrderStatusChanged",
              orderId,
              userId: current.userId,
              previousStatus: current.status,
              status: "PLACED",
              reason: `paid (payment ${paymentId})`,
            },
          },
    );
    return order !== undefined;
  }

  /** Moves an order along an allowed transition; asking for its current status changes nothing. */
  async updateStatus(orderId: string, status: OrderStatus | undefined, reason: string): Promise<Order> {
    const v = new FieldViolations();
    if (!UUID.test(orderId)) v.add("order_id", "must be an order id (a UUID)");
    if (!status) v.add("status", "must be a known status other than ORDER_STATUS_UNSPECIFIED");
    if (reason.length > MAX_NOTE) v.add("reason", `must be at most ${MAX_NOTE} characters`);
    v.throwIfAny();
    const to = status!;
    const order = await this.repo.updateStatus(orderId, (current) => {
      if (current.status === to) return undefined;
      if (!canTransition(current.status, to)) throw invalidTransition(orderId, current.status, to);
      return {
        status: to,
        reason,
        event: {
          id: randomUUID(),
          type: "OrderStatusChanged",
          orderId,
          userId: current.userId,
          previousStatus: current.status,
          status: to,
          reason,
        },
      };
    });
    if (!order) throw orderNotFound(orderId);
    return order;
  }
}

function validatePlaceOrder(input: PlaceOrderInput): void {
  const v = new FieldViolations();
  if (!REQUEST_ID.test(input.requestId))
    v.add("request_id", "must be 8-64 characters of A-Z, a-z, 0-9, _ or -");
  if (!input.userId) v.add("user_id", "is required");
  if (!input.restaurantId) v.add("restaurant_id", "is required");
  if (input.items.length === 0) v.add("items", "must contain at least one line");
  if (input.items.length > MAX_LINES) v.add("items", `must contain at most ${MAX_LINES} lines`);
  const seen = new Map<string, number>();
  input.items.forEach((line, i) => {
    if (!line.menuItemId) v.add(`items[${i}].menu_item_id`, "is required");
    else if (seen.has(line.menuItemId))
      v.add(
        `items[${i}].menu_item_id`,
        `repeats items[${seen.get(line.menuItemId)}]; raise its quantity instead`,
      );
    else seen.set(line.menuItemId, i);
    if (!Number.isInteger(line.quantity) || line.quantity < 1 || line.quantity > MAX_QUANTITY)
      v.add(`items[${i}].quantity`, `must be between 1 and ${MAX_QUANTITY}`);
  });
  const a = input.deliveryAddress;
  if (!a) v.add("delivery_address", "is required");
  else {
    if (!a.line1) v.add("delivery_address.line1", "is required");
    if (!a.city) v.add("delivery_address.city", "is required");
    if (!/^[A-Z]{2}$/.test(a.countryCode))
      v.add("delivery_address.country_code", "must be an ISO 3166-1 alpha-2 code");
  }
  if (input.note.length > MAX_NOTE) v.add("note", `must be at most ${MAX_NOTE} characters`);
  v.throwIfAny();
}

function requireOrderId(orderId: string): void {
  const v = new FieldViolations();
  if (!UUID.test(orderId)) v.add("order_id", "must be an order id (a UUID)");
  v.throwIfAny();
}

function requireField(field: string, value: string): void {
  const v = new FieldViolations();
  if (!value) v.add(field, "is required");
  v.throwIfAny();
}

function sameRequest(
  previous: { order: Order; requestHash: string },
  hash: string,
  requestId: string,
): Order {
  if (previous.requestHash !== hash) throw requestIdReused(requestId);
  return previous.order;
}

/** Fingerprint of what the client asked for, to tell a retry from a reused request id. */
function hashRequest(input: PlaceOrderInput): string {
  const canonical = JSON.stringify([
    input.userId,
    input.restaurantId,
    input.items.map((i) => [i.menuItemId, i.quantity]),
    input.deliveryAddress,
    input.note,
  ]);
  return createHash("sha256").update(canonical).digest("hex");
}

function sum(currencyCode: string, amounts: Money[]): Money {
  return { currencyCode, amountMinor: amounts.reduce((acc, m) => acc + m.amountMinor, 0) };
}
