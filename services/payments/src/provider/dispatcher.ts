import { type Logger, Poller } from "@dispatch/runtime";
import type { Payment } from "../domain/payment.ts";

/**
 * Hands recorded payments to the provider outside any request: polls for undispatched payments (locked
 * with SKIP LOCKED, so replicas share the work) and submits each once.
 */
export class PaymentDispatcher {
  private readonly poller: Poller;

  constructor(
    batch: (limit: number, submit: (p: Payment) => Promise<void>) => Promise<number>,
    submit: (p: Payment) => Promise<void>,
    logger: Logger,
    pollIntervalMs = 200,
  ) {
    this.poller = new Poller("payment-dispatcher", () => batch(20, submit), logger, pollIntervalMs);
  }

  start(): void {
    this.poller.start();
  }

  stop(): Promise<void> {
    return this.poller.stop();
  }
}
