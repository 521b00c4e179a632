import { Code } from "@connectrpc/connect";
import { ErrorReason } from "@dispatch/gen/dispatch/payments/v1/payments_pb.ts";
import { DispatchError } from "@dispatch/runtime";

const domain = "payments.dispatch";

export function idempotencyKeyReused(key: string): DispatchError {
  return new DispatchError(
    Code.FailedPrecondition,
    `idempotency_key ${key} was already used for a different payment request`,
    {
      reason: ErrorReason[ErrorReason.IDEMPOTENCY_KEY_REUSED],
      domain,
      metadata: { idempotency_key: key },
    },
  );
}

export function paymentNotFound(id: string): DispatchError {
  return new DispatchError(Code.NotFound, `payment ${id} not found`, {
    reason: ErrorReason[ErrorReason.PAYMENT_NOT_FOUND],
    domain,
    metadata: { payment_id: id },
  });
}

export function unknownProviderEvent(why: string): DispatchError {
  return new DispatchError(Code.InvalidArgument, `provider event not understood: ${why}`, {
    reason: ErrorReason[ErrorReason.UNKNOWN_PROVIDER_EVENT],
    domain,
    fieldViolations: [{ field: "payload", description: why }],
  });
}
