/** A payment for an order, and how provider outcomes move it. Pure TypeScript. */

export interface Money {
  currencyCode: string;
  amountMinor: number;
}

export type PaymentStatus = "PENDING" | "SUCCEEDED" | "FAILED" | "REFUNDED";

export interface Payment {
  id: string;
  orderId: string;
  userId: string;
  amount: Money;
  status: PaymentStatus;
  provider: string;
  providerPaymentId: string;
  clientSecret: string;
  failureReason: string;
  createdAt: Date;
  updatedAt: Date;
}

/** What a provider webhook says happened to a payment. */
export interface ProviderOutcome {
  eventId: string;
  type: string;
  providerPaymentId: string;
  /** SUCCEEDED or FAILED for the event types we act on; undefined for others (recorded, ignored). */
  status: "SUCCEEDED" | "FAILED" | undefined;
  failureReason: string;
}
