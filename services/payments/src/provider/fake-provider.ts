import { randomBytes, randomUUID } from "node:crypto";
import { SIGNATURE_HEADER, signWebhook } from "@dispatch/webhooks";
import type { Payment } from "../domain/payment.ts";
import type { PaymentProvider } from "../domain/ports.ts";

/**
 * A stand-in payment provider for local runs and tests: it "charges" every payment and reports the
 * outcome the way a real provider does, as a signed webhook to WEBHOOK_URL. Amounts ending in 13 minor
 * units are declined, so the failure path can be exercised.
 */
export class FakeProvider implements PaymentProvider {
  readonly name = "fake";

  constructor(private readonly opts: { webhookUrl: string; secret: string; delayMs: number }) {}

  newIntent(_paymentId: string) {
    const id = `fake_pi_${randomUUID().replaceAll("-", "")}`;
    return { providerPaymentId: id, clientSecret: `${id}_secret_${randomBytes(12).toString("base64url")}` };
  }

  async submit(payment: Payment): Promise<void> {
    const declined = payment.amount.amountMinor % 100 === 13;
    const type = declined ? "payment_intent.payment_failed" : "payment_intent.succeeded";
    const body = JSON.stringify({
      id: `evt_${randomUUID().replaceAll("-", "")}`,
      type,
      created: Math.floor(Date.now() / 1000),
      data: {
        object: {
          id: payment.providerPaymentId,
          amount: payment.amount.amountMinor,
          currency: payment.amount.currencyCode.toLowerCase(),
          metadata: { payment_id: payment.id, order_id: payment.orderId },
          ...(declined ? { last_payment_error: { message: "Your card was declined." } } : {}),
        },
      },
    });
    // Delivered after the dispatcher's transaction commits, as a provider's would arrive later.
    setTimeout(() => void this.deliver(body), this.opts.delayMs).unref();
  }

  private async deliver(body: string, attempt = 1): Promise<void> {
    try {
      const res = await fetch(this.opts.webhookUrl, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          [SIGNATURE_HEADER]: signWebhook(this.opts.secret, body),
        },
        body,
        signal: AbortSignal.timeout(5000),
      });
      if (res.status >= 500 || res.status === 429) throw new Error(`webhook answered ${res.status}`);
    } catch {
      // Providers retry webhooks for days; this one a few times.
      if (attempt < 5) setTimeout(() => void this.deliver(body, attempt + 1), 200 * 2 ** attempt).unref();
    }
  }
}
