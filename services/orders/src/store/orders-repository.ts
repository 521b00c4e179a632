import { type Database, jsonValue, rowsOf } from "@dispatch/db";
import { and, desc, eq, sql } from "drizzle-orm";
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

/**
 * The active statuses written into the active-orders statement as literals, not bound as parameters.
 * Bound, they left PostgreSQL's plan cache to guess their selectivity in the generic plan (`status in
 * ($2, ..., $7)`), and whether it then kept that plan or planned every execution anew depended on the
 * statistics ANALYZE happened to sample: in 6 of 12 ANALYZE runs over the benchmark's data it planned
 * every call (0 generic, 12 custom plans after 12 executions), which doubled PostgreSQL's CPU per
 * call (~250 -> ~500 µs at 1,000 calls/s). As literals the estimate comes from the column's statistics
 * and the generic plan was kept in 12 of 12 (docs/BENCHMARKS-ROUNDS.md, "Sixteenth round").
 */
const ACTIVE_STATUS_LIST = sql.raw(
  ACTIVE_STATUSES.map((s) => {
    if (!/^[A-Z_]+$/.test(s)) throw new Error(`order status ${s} cannot be written as an SQL literal`);
    return `'${s}'`;
  }).join(", "),
);

export class PgOrdersRepository implements OrdersRepository {
  /**
   * `reads` runs the single-statement reads (active orders, an order, a request id's order): the
   * database's read pool (`Database.reads`), or `db` itself, as inside a transaction.
   */
  constructor(
    private readonly db: OrdersDb,
    private readonly reads: OrdersDb = db,
  ) {}

  async findByRequestId(requestId: string): Promise<{ order: Order; requestHash: string } | undefined> {
    // Asked when an insert finds the request id taken, or a retry can no longer be priced: built once.
    this.byRequestId ??= this.buildByRequestId();
    const [row] = await this.byRequestId.execute({ requestId });
    if (!row) return undefined;
    const order = await this.get(row.id);
    return order && { order, requestHash: row.requestHash };
  }

  private byRequestId: ReturnType<PgOrdersRepository["buildByRequestId"]> | undefined;

  private buildByRequestId() {
    return this.reads
      .select({ id: orders.id, requestHash: orders.requestHash })
      .from(orders)
      .where(eq(orders.requestId, sql.placeholder("requestId")))
      .prepare("orders_by_request_id");
  }

  /**
   * One statement, so one round trip and atomic without BEGIN/COMMIT: the restaurant's local name, the
   * order, its lines, its first status and its event. The restaurant's row is locked only on a rename (an
   * upsert would lock it for every order of a popular restaurant). ON CONFLICT on the request id leaves
   * every other insert without a row to insert: a concurrent duplicate writes nothing.
   */
  async insert(o: NewOrder, event: (order: Order) => OutboxEvent): Promise<Order | undefined> {
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
      createdAt: new Date(0),
      updatedAt: new Date(0),
      statusHistory: [],
    };
    const e = orderEventRow(event(order));
    const lines = JSON.stringify(
      o.items.map((item, lineNo) => ({
        line_no: lineNo,
        menu_item_id: item.menuItemId,
        name: item.name,
        quantity: item.quantity,
        unit_price_minor: item.unitPrice.amountMinor,
      })),
    );
    const result = await this.db.execute(sql`
      with restaurant_seen as (
        insert into restaurants (id, name) values (${o.restaurantId}, ${o.restaurantName})
        on conflict (id) do nothing
      ), restaurant_renamed as (
        update restaurants set name = ${o.restaurantName}, updated_at = now()
        where id = ${o.restaurantId} and name <> ${o.restaurantName}
      ), placed as (
        insert into orders (id, request_id, request_hash, user_id, restaurant_id, status, currency_code,
          subtotal_minor, delivery_fee_minor, total_minor, delivery_address, note)
        values (${o.id}, ${o.requestId}, ${o.requestHash}, ${o.userId}, ${o.restaurantId}, ${o.status},
          ${o.total.currencyCode}, ${o.subtotal.amountMinor}, ${o.deliveryFee.amountMinor},
          ${o.total.amountMinor}, ${JSON.stringify(o.deliveryAddress)}::jsonb, ${o.note})
        on conflict (request_id) do nothing
        returning id, created_at
      ), lines as (
        insert into order_items (order_id, line_no, menu_item_id, name, quantity, unit_price_minor)
        select placed.id, l.line_no, l.menu_item_id, l.name, l.quantity, l.unit_price_minor
        from placed, jsonb_to_recordset(${lines}::jsonb)
          as l(line_no integer, menu_item_id text, name text, quantity integer, unit_price_minor bigint)
      ), event as (
        insert into outbox (id, event_type, subject, payload)
        select ${e.id}, ${e.eventType}, ${e.subject}, ${e.payload} from placed
      )
      insert into order_status_history (order_id, status, changed_at)
      select placed.id, ${o.status}, placed.created_at from placed
      returning changed_at`);
    const [row] = rowsOf<{ changed_at: Date | string }>(result);
    if (!row) return undefined;
    const createdAt = new Date(row.changed_at);
    order.createdAt = createdAt;
    order.updatedAt = createdAt;
    order.statusHistory = [{ status: o.status, changedAt: createdAt, reason: "" }];
    return order;
  }

  async get(orderId: string): Promise<Order | undefined> {
    // GetOrder, a retried PlaceOrder and the app's order screens read this: built once.
    this.byId ??= orderById(this.reads);
    const [row] = await this.byId.execute({ orderId });
    return row && loaded(row);
  }

  private byId: ReturnType<typeof orderById> | undefined;

  /** One query over orders, order items and restaurants (the app's /orders/active). */
  async listActive(userId: string): Promise<Order[]> {
    // The app's most frequent read: its SQL is built once per repository, not on every call.
    this.activeQuery ??= this.buildActiveQuery();
    const rows = await this.activeQuery.execute({ userId });
    return rows.map((r) => toOrder(r.order, r.restaurantName, r.items.map(itemOf(r.order.currencyCode))));
  }

  private activeQuery: ReturnType<PgOrdersRepository["buildActiveQuery"]> | undefined;

  /**
   * One row per order, its lines folded into a JSON array by PostgreSQL, in line order. Joining the lines
   * instead (a row per line, every order column repeated on each: 15 rows of 20 columns for three orders
   * of five lines, each value parsed and mapped) took orders about twice the CPU for this read
   * (docs/BENCHMARKS-ROUNDS.md, twelfth round).
   */
  private buildActiveQuery() {
    return this.reads
      .select({ order: listedOrder, restaurantName: restaurants.name, items: linesOf() })
      .from(orders)
      .innerJoin(restaurants, eq(restaurants.id, orders.restaurantId))
      .where(
        and(eq(orders.userId, sql.placeholder("userId")), sql`${orders.status} in (${ACTIVE_STATUS_LIST})`),
      )
      .orderBy(desc(orders.createdAt), desc(orders.id))
      .limit(ACTIVE_LIMIT)
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
      const [read] = await orderById(tx).execute({ orderId });
      const current = read && loaded(read);
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

/** One order with its lines and status history (`orderId`): one statement, both folded into JSON by PostgreSQL. */
function orderById(db: OrdersDb) {
  return db
    .select({ order: listedOrder, restaurantName: restaurants.name, items: linesOf(), history: historyOf() })
    .from(orders)
    .innerJoin(restaurants, eq(restaurants.id, orders.restaurantId))
    .where(eq(orders.id, sql.placeholder("orderId")))
    .prepare("orders_get");
}

function loaded(row: Awaited<ReturnType<ReturnType<typeof orderById>["execute"]>>[number]): Order {
  const order = toOrder(row.order, row.restaurantName, row.items.map(itemOf(row.order.currencyCode)));
  order.statusHistory = row.history.map(([status, changedAt, reason]) => ({
    status: status as OrderStatus,
    changedAt: new Date(changedAt),
    reason,
  }));
  return order;
}

function toOrder(
  o: Omit<typeof orders.$inferSelect, "requestId" | "requestHash">,
  restaurantName: string,
  items: OrderItem[],
): Order {
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

/** An order line as the active-orders query folds it: menu item id, name, quantity, unit price (minor units). */
type LineTuple = [string, string, number, number | string];

/** The orders columns an order is made of (not its request id and hash). */
const listedOrder = {
  id: orders.id,
  userId: orders.userId,
  restaurantId: orders.restaurantId,
  status: orders.status,
  currencyCode: orders.currencyCode,
  subtotalMinor: orders.subtotalMinor,
  deliveryFeeMinor: orders.deliveryFeeMinor,
  totalMinor: orders.totalMinor,
  deliveryAddress: orders.deliveryAddress,
  note: orders.note,
  createdAt: orders.createdAt,
  updatedAt: orders.updatedAt,
};

/** A status change as an order's read folds it: status, when (ISO 8601 with its offset), reason. */
type ChangeTuple = [string, string, string];

/**
 * An order's lines in line order, folded into one JSON array by PostgreSQL: a row per order instead of a
 * row per line (the queries using it join restaurants, so drizzle qualifies the outer orders.id).
 */
function linesOf() {
  const { menuItemId, name, quantity, unitPriceMinor, lineNo, orderId } = orderItems;
  const line = sql`json_build_array(${menuItemId}, ${name}, ${quantity}, ${unitPriceMinor})`;
  return sql<LineTuple[]>`(select coalesce(json_agg(${line} order by ${lineNo}), '[]'::json)
    from ${orderItems} where ${orderId} = ${orders.id})`.mapWith(jsonValue<LineTuple[]>);
}

/** An order's status changes, oldest first, folded the same way. */
function historyOf() {
  const h = orderStatusHistory;
  const change = sql`json_build_array(${h.status}, ${h.changedAt}, ${h.reason})`;
  return sql<ChangeTuple[]>`(select coalesce(json_agg(${change} order by ${h.id}), '[]'::json)
    from ${h} where ${h.orderId} = ${orders.id})`.mapWith(jsonValue<ChangeTuple[]>);
}

function itemOf(currencyCode: string) {
  return ([menuItemId, name, quantity, unit]: LineTuple): OrderItem => {
    const amountMinor = Number(unit);
    return {
      menuItemId,
      name,
      quantity,
      unitPrice: { currencyCode, amountMinor },
      lineTotal: { currencyCode, amountMinor: amountMinor * quantity },
    };
  };
}
