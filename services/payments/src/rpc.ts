import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type PaymentSchema,
  PaymentsService,
  PaymentStatus as ProtoStatus,
} from "@dispatch/gen/dispatch/payments/v1/payments_pb.ts";
import type { ServiceImpl } from "@dispatch/runtime";
import type { Payment } from "./domain/payment.ts";
import type { Payments } from "./domain/use-cases.ts";

/** The proto adapter: request -> use case -> response. */
export function paymentsRpc(
  payments: Payments,
): [typeof PaymentsService, ServiceImpl<typeof PaymentsService>] {
  return [
    PaymentsService,
    {
      async createPayment(req) {
        const payment = await payments.createPayment({
          idempotencyKey: req.idempotencyKey,
          orderId: req.orderId,
          userId: req.userId,
          amount: req.amount && {
            currencyCode: req.amount.currencyCode,
            amountMinor: Number(req.amount.amountMinor),
          },
        });
        return { payment: paymentMsg(payment) };
      },
      async getPayment(req) {
        return { payment: paymentMsg(await payments.getPayment(req.paymentId)) };
      },
      async handleProviderEvent(req) {
        const r = await payments.handleProviderEvent({
          provider: req.provider,
          eventId: req.eventId,
          eventType: req.eventType,
          payload: req.payload,
        });
        return { duplicate: r.duplicate, ...(r.payment ? { payment: paymentMsg(r.payment) } : {}) };
      },
    },
  ];
}

function paymentMsg(p: Payment): MessageInitShape<typeof PaymentSchema> {
  return {
    id: p.id,
    orderId: p.orderId,
    userId: p.userId,
    amount: { currencyCode: p.amount.currencyCode, amountMinor: BigInt(p.amount.amountMinor) },
    status: ProtoStatus[p.status],
    provider: p.provider,
    providerPaymentId: p.providerPaymentId,
    clientSecret: p.clientSecret,
    failureReason: p.failureReason,
    createTime: timestampFromDate(p.createdAt),
    updateTime: timestampFromDate(p.updatedAt),
  };
}
