import type { Money, Payment, ProviderOutcome } from "./payment.ts";

export interface NewPayment {
  id: string;
  orderId: string;
  userId: string;
  amount: Money;
  provider: string;
  providerPaymentId: string;
  clientSecret: string;
}

/** Where payments, idempotency keys and provider events live; implemented by the store. */
export interface PaymentsRepository {
  /**
   * Stores the payment under the idempotency key, atomically. When the key exists already (also when a
   * concurrent duplicate committed first), stores nothing and returns what the key holds.
   */
  createOnce(
    key: string,
    requestHash: string,
    payment: NewPayment,
  ): Promise<{ created: true; payment: Payment } | { created: false; requestHash: string; payment: Payment }>;
  get(id: string): Promise<Payment | undefined>;
  /**
   * Records the provider event once (by provider and event id) and applies its outcome to the payment
   * (PENDING -> SUCCEEDED/FAILED, with an outbox event) in the same transaction.
   */
  applyProviderEvent(
    provider: string,
    outcome: ProviderOutcome,
  ): Promise<{ duplicate: boolean; payment: Payment | undefined }>;
}

/** A payment provider, called by the dispatcher worker, never inside a request. */
export interface PaymentProvider {
  readonly name: string;
  /** The provider's id for a new payment and the secret the app's payment sheet needs. */
  newIntent(paymentId: string): { providerPaymentId: string; clientSecret: string };
  /** Hands a recorded payment to the provider; its outcome comes back later as a webhook. */
  submit(payment: Payment): Promise<void>;
}
