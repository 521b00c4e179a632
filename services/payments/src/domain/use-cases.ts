import { createHash, randomUUID } from "node:crypto";
import { FieldViolations } from "@dispatch/runtime";
import { idempotencyKeyReused, paymentNotFound, unknownProviderEvent } from "./errors.ts";
import type { Money, Payment, ProviderOutcome } from "./payment.ts";
import type { PaymentProvider, PaymentsRepository } from "./ports.ts";

const KEY = /^[A-Za-z0-9_-]{8,64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_AMOUNT_MINOR = 10_000_000;

export interface CreatePaymentInput {
  idempotencyKey: string;
  orderId: string;
  userId: string;
  amount: Money | undefined;
}

export class Payments {
  constructor(
    private readonly repo: PaymentsRepository,
    private readonly provider: PaymentProvider,
  ) {}

  /**
   * Records a payment for an order. The same idempotency key with the same request returns the first
   * payment; with a different request it is refused (FAILED_PRECONDITION, IDEMPOTENCY_KEY_REUSED).
   * The provider is not called here: the dispatcher hands the payment over after this commits.
   */
  async createPayment(input: CreatePaymentInput): Promise<Payment> {
    const v = new FieldViolations();
    if (!KEY.test(input.idempotencyKey))
      v.add("idempotency_key", "must be 8-64 characters of A-Z, a-z, 0-9, _ or -");
    if (!UUID.test(input.orderId)) v.add("order_id", "must be an order id (a UUID)");
    if (!input.userId) v.add("user_id", "is required");
    if (!input.amount) v.add("amount", "is required");
    else {
      if (!/^[A-Z]{3}$/.test(input.amount.currencyCode))
        v.add("amount.currency_code", "must be an ISO 4217 code");
      if (!(input.amount.amountMinor > 0 && input.amount.amountMinor <= MAX_AMOUNT_MINOR))
        v.add("amount.amount_minor", `must be between 1 and ${MAX_AMOUNT_MINOR}`);
    }
    v.throwIfAny();

    const hash = createHash("sha256")
      .update(
        JSON.stringify([input.orderId, input.userId, input.amount!.currencyCode, input.amount!.amountMinor]),
      )
      .digest("hex");
    const id = randomUUID();
    const intent = this.provider.newIntent(id);
    const result = await this.repo.createOnce(input.idempotencyKey, hash, {
      id,
      orderId: input.orderId,
      userId: input.userId,
      amount: input.amount!,
      provider: this.provider.name,
      ...intent,
    });
    if (!result.created && result.requestHash !== hash) throw idempotencyKeyReused(input.idempotencyKey);
    return result.payment;
  }

  async getPayment(id: string): Promise<Payment> {
    const v = new FieldViolations();
    if (!UUID.test(id)) v.add("payment_id", "must be a payment id (a UUID)");
    v.throwIfAny();
    const payment = await this.repo.get(id);
    if (!payment) throw paymentNotFound(id);
    return payment;
  }

  /** Applies a verified provider webhook once per event id. */
  async handleProviderEvent(input: {
    provider: string;
    eventId: string;
    eventType: string;
    payload: Uint8Array;
  }): Promise<{ duplicate: boolean; payment: Payment | undefined }> {
    const v = new FieldViolations();
    if (input.provider !== this.provider.name) v.add("provider", `must be ${this.provider.name}`);
    if (!input.eventId) v.add("event_id", "is required");
    if (!input.eventType) v.add("event_type", "is required");
    v.throwIfAny();
    return this.repo.applyProviderEvent(
      input.provider,
      parseProviderEvent(input.eventId, input.eventType, input.payload),
    );
  }
}

/** Reads a Stripe-shaped webhook body: { id, type, data: { object: { id, last_payment_error } } }. */
export function parseProviderEvent(eventId: string, eventType: string, payload: Uint8Array): ProviderOutcome {
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(payload).toString("utf8"));
  } catch {
    throw unknownProviderEvent("payload is not JSON");
  }
  const b = body as {
    id?: unknown;
    type?: unknown;
    data?: { object?: { id?: unknown; last_payment_error?: { message?: unknown } } };
  };
  if (b.id !== eventId) throw unknownProviderEvent("payload id differs from event_id");
  if (b.type !== eventType) throw unknownProviderEvent("payload type differs from event_type");
  const object = b.data?.object;
  if (typeof object?.id !== "string") throw unknownProviderEvent("data.object.id is missing");
  const status =
    eventType === "payment_intent.succeeded"
      ? "SUCCEEDED"
      : eventType === "payment_intent.payment_failed"
        ? "FAILED"
        : undefined;
  const message = object.last_payment_error?.message;
  return {
    eventId,
    type: eventType,
    providerPaymentId: object.id,
    status,
    failureReason: status === "FAILED" ? (typeof message === "string" ? message : "payment failed") : "",
  };
}
