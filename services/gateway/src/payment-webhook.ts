import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { Client } from "@dispatch/client";
import type { PaymentsService } from "@dispatch/gen/dispatch/payments/v1/payments_pb.ts";
import type { Logger } from "@dispatch/runtime";
import { SIGNATURE_HEADER, verifyWebhook } from "@dispatch/webhooks";

const MAX_WEBHOOK_BYTES = 64 * 1024;

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

/**
 * POST /webhooks/payments: the provider's webhook. The signature is checked over the raw bytes (with a
 * timestamp tolerance against replays), then payments applies it over gRPC, once per event id. Any
 * failure downstream answers 503 so the provider retries later.
 */
export function paymentWebhookHandler(opts: {
  payments: Client<typeof PaymentsService>;
  secret: string;
  toleranceS: number;
  provider: string;
  logger: Logger;
}) {
  return async (req: Req, res: Res): Promise<void> => {
    const reply = (status: number, message: string) => {
      (res as ServerResponse).writeHead(status, { "content-type": "application/json" });
      (res as ServerResponse).end(JSON.stringify({ message }));
    };
    if (req.method !== "POST") return reply(405, "use POST");
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_WEBHOOK_BYTES) return reply(413, "webhook body too large");
      chunks.push(chunk);
    }
    const body = Buffer.concat(chunks);
    const header = req.headers[SIGNATURE_HEADER];
    const check = verifyWebhook(opts.secret, typeof header === "string" ? header : undefined, body, {
      toleranceS: opts.toleranceS,
    });
    if (!check.ok) {
      opts.logger.warn({ reason: check.reason }, "payment webhook refused");
      return reply(400, `signature check failed: ${check.reason}`);
    }
    let event: { id?: unknown; type?: unknown };
    try {
      event = JSON.parse(body.toString("utf8")) as { id?: unknown; type?: unknown };
    } catch {
      return reply(400, "body is not JSON");
    }
    if (typeof event.id !== "string" || typeof event.type !== "string")
      return reply(400, "event id and type are required");
    try {
      const r = await opts.payments.handleProviderEvent(
        { provider: opts.provider, eventId: event.id, eventType: event.type, payload: body },
        { timeoutMs: 5000 },
      );
      return reply(200, r.duplicate ? "duplicate" : "applied");
    } catch (err) {
      opts.logger.warn(
        { err: (err as Error).message, eventId: event.id },
        "payment webhook not applied; provider will retry",
      );
      return reply(503, "not applied; retry later");
    }
  };
}
