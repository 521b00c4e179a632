import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema } from "@dispatch/gen/google/rpc/error_details_pb.ts";
import { StatusSchema } from "@dispatch/gen/google/rpc/status_pb.ts";

export interface FieldViolation {
  /** Path of the field in the request, e.g. "items[0].quantity". */
  field: string;
  description: string;
}

export interface DispatchErrorOptions {
  /** An ErrorReason value name from the service's contract, e.g. "ORDER_NOT_FOUND". */
  reason?: string;
  /** Who defines the reason, e.g. "orders.dispatch". */
  domain?: string;
  metadata?: Record<string, string>;
  fieldViolations?: FieldViolation[];
  cause?: unknown;
}

/**
 * An error meant for the caller: its code, message, reason (google.rpc.ErrorInfo) and field
 * violations (google.rpc.BadRequest) reach the client as they are.
 */
export class DispatchError extends Error {
  override name = "DispatchError";
  readonly reason: string | undefined;
  readonly domain: string | undefined;
  readonly metadata: Record<string, string> | undefined;
  readonly fieldViolations: FieldViolation[] | undefined;

  constructor(
    readonly code: Code,
    message: string,
    opts: DispatchErrorOptions = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.reason = opts.reason;
    this.domain = opts.domain;
    this.metadata = opts.metadata;
    this.fieldViolations = opts.fieldViolations;
  }
}

/** INVALID_ARGUMENT naming each bad field. */
export function invalidArgument(violations: FieldViolation[], message?: string): DispatchError {
  return new DispatchError(
    Code.InvalidArgument,
    message ?? `invalid request: ${violations.map((v) => `${v.field} ${v.description}`).join("; ")}`,
    { fieldViolations: violations },
  );
}

/** Collects every problem with a request, then fails once naming them all. */
export class FieldViolations {
  readonly list: FieldViolation[] = [];

  add(field: string, description: string): this {
    this.list.push({ field, description });
    return this;
  }

  throwIfAny(): void {
    if (this.list.length > 0) throw invalidArgument(this.list);
  }
}

/** What goes on the wire for a failed call. */
export interface WireStatus {
  code: Code;
  message: string;
  /** Serialized google.rpc.Status, for grpc-status-details-bin. */
  details: Uint8Array | undefined;
  /** True when the error was not meant for the caller (logged in full at error level). */
  unexpected: boolean;
}

// Codes a downstream failure may pass on as they are: they describe the system's state, not our bug.
const passThrough = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.ResourceExhausted, Code.Canceled]);

/**
 * An error (or one in its cause chain) may declare the gRPC status it stands for with a numeric
 * `grpcCode`: infrastructure packages use it, e.g. @dispatch/db marks a lost database UNAVAILABLE.
 */
function declaredCode(err: unknown): Code | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { grpcCode?: unknown }).grpcCode;
    if (typeof code === "number" && passThrough.has(code)) return code;
  }
  return undefined;
}

/** Maps anything a handler threw to the status the caller sees. Never leaks unexpected errors. */
export function toWireStatus(err: unknown): WireStatus {
  if (err instanceof DispatchError) {
    return { code: err.code, message: err.message, details: statusDetails(err), unexpected: false };
  }
  if (err instanceof ConnectError && passThrough.has(err.code)) {
    return { code: err.code, message: err.rawMessage, details: undefined, unexpected: false };
  }
  const declared = declaredCode(err);
  if (declared !== undefined) {
    return {
      code: declared,
      message: `${Code[declared]}: a dependency is not available; retry later`,
      details: undefined,
      unexpected: false,
    };
  }
  return { code: Code.Internal, message: "internal error", details: undefined, unexpected: true };
}

function statusDetails(err: DispatchError): Uint8Array | undefined {
  const details = [];
  if (err.reason) {
    details.push(
      anyPack(
        ErrorInfoSchema,
        create(ErrorInfoSchema, {
          reason: err.reason,
          domain: err.domain ?? "",
          metadata: err.metadata ?? {},
        }),
      ),
    );
  }
  if (err.fieldViolations?.length) {
    details.push(
      anyPack(BadRequestSchema, create(BadRequestSchema, { fieldViolations: err.fieldViolations })),
    );
  }
  if (details.length === 0) return undefined;
  return toBinary(StatusSchema, create(StatusSchema, { code: err.code, message: err.message, details }));
}
