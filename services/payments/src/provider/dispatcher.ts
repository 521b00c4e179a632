import type { Logger } from "@dispatch/runtime";
import type { Payment } from "../domain/payment.ts";

/**
 * Hands recorded payments to the provider outside any request: polls for undispatched payments (locked
 * with SKIP LOCKED, so replicas share the work) and submits each once.
 */
export class PaymentDispatcher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;

  constructor(
    private readonly batch: (limit: number, submit: (p: Payment) => Promise<void>) => Promise<number>,
    private readonly submit: (p: Payment) => Promise<void>,
    private readonly logger: Logger,
    private readonly pollIntervalMs = 200,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.running = this.round().finally(() => {
        this.running = undefined;
      });
    }, ms);
    this.timer.unref();
  }

  private async round(): Promise<void> {
    let n = 0;
    try {
      n = await this.batch(20, this.submit);
    } catch (err) {
      this.logger.error({ err }, "payment dispatch failed; will retry");
    }
    if (!this.stopped) this.schedule(n > 0 ? 0 : this.pollIntervalMs);
  }
}
