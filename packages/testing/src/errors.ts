import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema } from "@dispatch/gen/google/rpc/error_details_pb.ts";

export interface StatusSeen {
  code: Code;
  codeName: string;
  message: string;
  reason: string | undefined;
  fieldViolations: { field: string; description: string }[];
}

/** Awaits a call that must fail and returns its status, reason and field violations for assertions. */
export async function statusOf(call: Promise<unknown>): Promise<StatusSeen> {
  try {
    await call;
  } catch (err) {
    if (!(err instanceof ConnectError)) throw err;
    const info = err.findDetails(ErrorInfoSchema)[0];
    const bad = err.findDetails(BadRequestSchema)[0];
    return {
      code: err.code,
      codeName: Code[err.code],
      message: err.rawMessage,
      reason: info?.reason,
      fieldViolations: (bad?.fieldViolations ?? []).map((v) => ({
        field: v.field,
        description: v.description,
      })),
    };
  }
  throw new Error("expected the call to fail, but it succeeded");
}
