import type { Database } from "@dispatch/db";
import { and, asc, desc, eq, inArray, ne, sql } from "drizzle-orm";
import { ACTIVE_STATUSES, type Order, type OrderItem, type OrderStatus } from "../domain/order.ts";
import type { NewOrder, OrdersRepository, OutboxEvent } from "../domain/ports.ts";
import { orderEventRow } from "./outbox.ts";
import { orderItems, orderStatusHistory, orders, outbox, restaurants, type schema } from "./schema.ts";

type Db = Database<typeof schema>["db"];
type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
/** The repository runs on the database, or inside a transaction someone else opened (event consumers). */
export type OrdersDb = Db | Tx;

/** Active orders returned per user at most; older ones are still reachable with GetOrder. */
const ACTIVE_LIMIT = 50;

export class PgOrdersRepository implements OrdersRepository {
  constructor(private readonly db: OrdersDb) {}

  async findByRequestId(requestId: string): Promise<{ order: Order; requestHash: string } | undefined> {
    const [row] = await this.db
      .select({ id: orders.id, requestHash: orders.requestHash })
      .from(orders)
      .where(eq(orders.requestId, requestId));
    if (!row) return undefined;
    const order = await loadOrder(this.db, row.id);
    return order && { order, requestHash: row.requestHash };
  }

  async insert(o: NewOrder, event: (order: Order) => OutboxEvent): Promise<Order | undefined> {
    return this.db.transaction(async (tx) => {
      // The local copy of the restaurant's name. An upsert would lock the restaurant's row for the whole
      // transaction and serialize every order of a popular restaurant; this locks it only on a rename.
      await tx
        .insert(restaurants)
        .values({ id: o.restaurantId, name: o.restaurantName })
        .onConflictDoNothing({ target: restaurants.id });
      await tx
        .update(restaurants)
        .set({ name: o.restaurantName, updatedAt: sql`now()` })
        .where(and(eq(restaurants.id, o.restaurantId), ne(restaurants.name, o.restaurantName)));
      const [row] = await tx
        .insert(orders)
        .values({
          id: o.id,
          requestId: o.requestId,
          requestHash: o.requestHash,
          userId: o.userId,
          restaurantId: o.restaurantId,
          status: o.status,
          currencyCode: o.total.currencyCode,
          subtotalMinor: o.subtotal.amountMinor,
          deliveryFeeMinor: o.deliveryFee.amountMinor,
          totalMinor: o.total.amountMinor,
          deliveryAddress: o.deliveryAddress,
          note: o.note,
        })
        .onConflictDoNothing({ target: orders.requestId })
        .returning({ createdAt: orders.createdAt });
      if (!row) return undefined;
      await tx.insert(orderItems).values(
        o.items.map((item, lineNo) => ({
          orderId: o.id,
          lineNo,
          menuItemId: item.menuItemId,
          name: item.name,
          quantity: item.quantity,
          unitPriceMinor: item.unitPrice.amountMinor,
        })),
      );
      await tx
        .insert(orderStatusHistory)
        .values({ orderId: o.id, status: o.status, changedAt: row.createdAt });
      const order: Order = {
        id: o.id,
        userId: o.userId,
        restaurantId: o.restaurantId,
        restaurantName: o.restaurantName,
        status: o.status,
        items: o.items,
        subtotal: o.subtotal,
        deliveryFee: o.deliveryFee,
        total: o.total,
        deliveryAddress: o.deliveryAddress,
        note: o.note,
        createdAt: row.createdAt,
        updatedAt: row.createdAt,
        statusHistory: [{ status: o.status, changedAt: row.createdAt, reason: "" }],
      };
      await tx.insert(outbox).values(orderEventRow(event(order)));
      return order;
    });
  }

  get(orderId: string): Promise<Order | undefined> {
    return loadOrder(this.db, orderId);
  }

  /** One query over orders, order items and restaurants (the app's /orders/active). */
  async listActive(userId: string): Promise<Order[]> {
    // The app's most frequent read: its SQL is built once per repository, not on every call.
    this.activeQuery ??= this.buildActiveQuery();
    return groupOrders(await this.activeQuery.execute({ userId }));
  }

  private activeQuery: ReturnType<PgOrdersRepository["buildActiveQuery"]> | undefined;

  private buildActiveQuery() {
    const recent = this.db
      .select({ id: orders.id })
      .from(orders)
      .where(and(eq(orders.userId, sql.placeholder("userId")), inArray(orders.status, [...ACTIVE_STATUSES])))
      .orderBy(desc(orders.createdAt), desc(orders.id))
      .limit(ACTIVE_LIMIT);
    return this.db
      .select({ order: orders, restaurantName: restaurants.name, item: orderItems })
      .from(orders)
      .innerJoin(restaurants, eq(restaurants.id, orders.restaurantId))
      .innerJoin(orderItems, eq(orderItems.orderId, orders.id))
      .where(inArray(orders.id, recent))
      .orderBy(desc(orders.createdAt), desc(orders.id), asc(orderItems.lineNo))
      .prepare("orders_list_active");
  }

  async updateStatus(
    orderId: string,
    decide: (order: Order) => { status: OrderStatus; reason: string; event: OutboxEvent } | undefined,
  ): Promise<Order | undefined> {
    return this.db.transaction(async (tx) => {
      const [locked] = await tx
        .select({ id: orders.id })
        .from(orders)
        .where(eq(orders.id, orderId))
        .for("update");
      if (!locked) return undefined;
      const current = await loadOrder(tx, orderId);
      if (!current) return undefined;
      const change = decide(current);
      if (!change) return current;
      const [row] = await tx
        .update(orders)
        .set({ status: change.status, updatedAt: sql`now()` })
        .where(eq(orders.id, orderId))
        .returning({ updatedAt: orders.updatedAt });
      await tx
        .insert(orderStatusHistory)
        .values({ orderId, status: change.status, reason: change.reason, changedAt: row!.updatedAt });
      await tx.insert(outbox).values(orderEventRow(change.event));
      return {
        ...current,
        status: change.status,
        updatedAt: row!.updatedAt,
        statusHistory: [
          ...current.statusHistory,
          { status: change.status, changedAt: row!.updatedAt, reason: change.reason },
        ],
      };
    });
  }
}

type JoinedRow = {
  order: typeof orders.$inferSelect;
  restaurantName: string;
  item: typeof orderItems.$inferSelect;
};

/** Folds joined rows (one per item, ordered by order then line) into orders. */
function groupOrders(rows: JoinedRow[]): Order[] {
  const result: Order[] = [];
  let current: Order | undefined;
  for (const row of rows) {
    if (current?.id !== row.order.id) {
      current = toOrder(row.order, row.restaurantName, []);
      result.push(current);
    }
    current.items.push(toItem(row.item, row.order.currencyCode));
  }
  return result;
}

async function loadOrder(db: OrdersDb, orderId: string): Promise<Order | undefined> {
  const rows = await db
    .select({ order: orders, restaurantName: restaurants.name, item: orderItems })
    .from(orders)
    .innerJoin(restaurants, eq(restaurants.id, orders.restaurantId))
    .innerJoin(orderItems, eq(orderItems.orderId, orders.id))
    .where(eq(orders.id, orderId))
    .orderBy(asc(orderItems.lineNo));
  const [order] = groupOrders(rows);
  if (!order) return undefined;
  const history = await db
    .select()
    .from(orderStatusHistory)
    .where(eq(orderStatusHistory.orderId, orderId))
    .orderBy(asc(orderStatusHistory.id));
  order.statusHistory = history.map((h) => ({
    status: h.status as OrderStatus,
    changedAt: h.changedAt,
    reason: h.reason,
  }));
  return order;
}

function toOrder(o: typeof orders.$inferSelect, restaurantName: string, items: OrderItem[]): Order {
  const money = (amountMinor: number) => ({ currencyCode: o.currencyCode, amountMinor });
  return {
    id: o.id,
    userId: o.userId,
    restaurantId: o.restaurantId,
    restaurantName,
    status: o.status as OrderStatus,
    items,
    subtotal: money(o.subtotalMinor),
    deliveryFee: money(o.deliveryFeeMinor),
    total: money(o.totalMinor),
    deliveryAddress: o.deliveryAddress,
    note: o.note,
    createdAt: o.createdAt,
    updatedAt: o.updatedAt,
    statusHistory: [],
  };
}

function toItem(i: typeof orderItems.$inferSelect, currencyCode: string): OrderItem {
  return {
    menuItemId: i.menuItemId,
    name: i.name,
    quantity: i.quantity,
    unitPrice: { currencyCode, amountMinor: i.unitPriceMinor },
    lineTotal: { currencyCode, amountMinor: i.unitPriceMinor * i.quantity },
  };
}
