import { randomUUID } from "node:crypto";
import type { Database } from "@dispatch/db";
import { outboxRow } from "@dispatch/events";
import { PaymentStatus as ProtoPaymentStatus } from "@dispatch/gen/dispatch/payments/v1/payments_pb.ts";
import { and, asc, eq, isNull, sql } from "drizzle-orm";
import type { Payment, PaymentStatus, ProviderOutcome } from "../domain/payment.ts";
import type { NewPayment, PaymentsRepository } from "../domain/ports.ts";
import { idempotencyKeys, outbox, payments, providerEvents, type schema } from "./schema.ts";

type Db = Database<typeof schema>["db"];

/** Thrown inside a transaction to roll it back when a concurrent request owns the idempotency key. */
class KeyTaken extends Error {}

export class PgPaymentsRepository implements PaymentsRepository {
  constructor(private readonly db: Db) {}

  async createOnce(key: string, requestHash: string, p: NewPayment) {
    try {
      const payment = await this.db.transaction(async (tx) => {
        const [row] = await tx
          .insert(payments)
          .values({
            id: p.id,
            orderId: p.orderId,
            userId: p.userId,
            amountMinor: p.amount.amountMinor,
            currencyCode: p.amount.currencyCode,
            status: "PENDING",
            provider: p.provider,
            providerPaymentId: p.providerPaymentId,
            clientSecret: p.clientSecret,
          })
          .returning();
        const claimed = await tx
          .insert(idempotencyKeys)
          .values({ key, requestHash, paymentId: p.id })
          .onConflictDoNothing()
          .returning({ key: idempotencyKeys.key });
        if (claimed.length === 0) throw new KeyTaken();
        return toPayment(row!);
      });
      return { created: true as const, payment };
    } catch (err) {
      if (!(err instanceof KeyTaken)) throw err;
    }
    const [existing] = await this.db
      .select({ requestHash: idempotencyKeys.requestHash, payment: payments })
      .from(idempotencyKeys)
      .innerJoin(payments, eq(payments.id, idempotencyKeys.paymentId))
      .where(eq(idempotencyKeys.key, key));
    if (!existing) throw new Error(`idempotency key ${key} vanished`);
    return {
      created: false as const,
      requestHash: existing.requestHash,
      payment: toPayment(existing.payment),
    };
  }

  async get(id: string): Promise<Payment | undefined> {
    const [row] = await this.db.select().from(payments).where(eq(payments.id, id));
    return row && toPayment(row);
  }

  async applyProviderEvent(provider: string, o: ProviderOutcome) {
    return this.db.transaction(async (tx) => {
      const fresh = await tx
        .insert(providerEvents)
        .values({ provider, eventId: o.eventId, eventType: o.type })
        .onConflictDoNothing()
        .returning({ eventId: providerEvents.eventId });
      const [row] = await tx
        .select()
        .from(payments)
        .where(and(eq(payments.provider, provider), eq(payments.providerPaymentId, o.providerPaymentId)))
        .for("update");
      if (fresh.length === 0) return { duplicate: true, payment: row && toPayment(row) };
      if (!row) return { duplicate: false, payment: undefined };
      await tx
        .update(providerEvents)
        .set({ paymentId: row.id })
        .where(and(eq(providerEvents.provider, provider), eq(providerEvents.eventId, o.eventId)));
      if (!o.status || row.status !== "PENDING") return { duplicate: false, payment: toPayment(row) };
      const [updated] = await tx
        .update(payments)
        .set({ status: o.status, failureReason: o.failureReason, updatedAt: sql`now()` })
        .where(eq(payments.id, row.id))
        .returning();
      const payment = toPayment(updated!);
      await tx.insert(outbox).values(paymentEventRow(payment));
      return { duplicate: false, payment };
    });
  }

  /** Payments not yet handed to the provider, oldest first, locked against other dispatchers. */
  async dispatchBatch(limit: number, submit: (p: Payment) => Promise<void>): Promise<number> {
    return this.db.transaction(async (tx) => {
      const rows = await tx
        .select()
        .from(payments)
        .where(isNull(payments.dispatchedAt))
        .orderBy(asc(payments.createdAt))
        .limit(limit)
        .for("update", { skipLocked: true });
      for (const row of rows) {
        await submit(toPayment(row));
        await tx.update(payments).set({ dispatchedAt: sql`now()` }).where(eq(payments.id, row.id));
      }
      return rows.length;
    });
  }
}

function paymentEventRow(p: Payment) {
  const amount = { currencyCode: p.amount.currencyCode, amountMinor: BigInt(p.amount.amountMinor) };
  return outboxRow({
    id: randomUUID(),
    source: "payments",
    subject: p.id,
    payload:
      p.status === "SUCCEEDED"
        ? {
            case: "paymentSucceeded",
            value: { paymentId: p.id, orderId: p.orderId, userId: p.userId, amount },
          }
        : {
            case: "paymentFailed",
            value: {
              paymentId: p.id,
              orderId: p.orderId,
              userId: p.userId,
              status: ProtoPaymentStatus[p.status],
              failureReason: p.failureReason,
            },
          },
  });
}

function toPayment(r: typeof payments.$inferSelect): Payment {
  return {
    id: r.id,
    orderId: r.orderId,
    userId: r.userId,
    amount: { currencyCode: r.currencyCode, amountMinor: r.amountMinor },
    status: r.status as PaymentStatus,
    provider: r.provider,
    providerPaymentId: r.providerPaymentId,
    clientSecret: r.clientSecret,
    failureReason: r.failureReason,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}
