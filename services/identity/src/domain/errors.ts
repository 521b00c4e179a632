import { Code } from "@connectrpc/connect";
import { ErrorReason } from "@dispatch/gen/dispatch/identity/v1/identity_pb.ts";
import { DispatchError } from "@dispatch/runtime";

const domain = "identity.dispatch";
const reason = (r: ErrorReason) => ErrorReason[r];

/** One error for unknown email and wrong password alike, so neither can be told from the other. */
export function invalidCredentials(): DispatchError {
  return new DispatchError(Code.Unauthenticated, "email or password is wrong", {
    reason: reason(ErrorReason.INVALID_CREDENTIALS),
    domain,
  });
}

export function emailTaken(): DispatchError {
  return new DispatchError(Code.AlreadyExists, "an account with this email exists", {
    reason: reason(ErrorReason.EMAIL_TAKEN),
    domain,
  });
}

export function refreshRejected(why: "invalid" | "expired" | "reused"): DispatchError {
  const r = {
    invalid: ErrorReason.REFRESH_TOKEN_INVALID,
    expired: ErrorReason.REFRESH_TOKEN_EXPIRED,
    reused: ErrorReason.REFRESH_TOKEN_REUSED,
  }[why];
  const message = {
    invalid: "refresh token is not valid",
    expired: "refresh token has expired",
    reused: "refresh token was already used; the session is revoked",
  }[why];
  return new DispatchError(Code.Unauthenticated, message, { reason: reason(r), domain });
}

export function userNotFound(id: string): DispatchError {
  return new DispatchError(Code.NotFound, `user ${id} not found`, {
    reason: reason(ErrorReason.USER_NOT_FOUND),
    domain,
  });
}
