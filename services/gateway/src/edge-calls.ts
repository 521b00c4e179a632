import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type Logger,
  newRequestId,
  type OpenSpan,
  parseTimeout,
  RpcLog,
  ServerMethodMetrics,
  serverSpan,
} from "@dispatch/runtime";
import type { AccessTokenVerifier, AuthenticatedUser } from "./access-tokens.ts";
import { PUBLIC_METHODS } from "./app-rpc.ts";
import type { RateLimits } from "./rate-limits.ts";

/** Request headers as both edge paths see them: node's header object or WHATWG Headers. */
export type RequestHeaders = Record<string, string | string[] | undefined> | Headers;

/** A public method's series and access log, made once per method. */
interface MethodObservers {
  metrics: ServerMethodMetrics;
  log: RpcLog;
}

/** One public call being observed: its request id, deadline, span and metrics, ended exactly once. */
export class ObservedCall {
  readonly requestId: string;
  readonly deadline: number | undefined;
  readonly traceSpan: OpenSpan | undefined;
  private readonly started = performance.now();
  private ended = false;

  constructor(
    private readonly observers: MethodObservers,
    readonly method: DescMethod,
    headers: RequestHeaders,
    private readonly peer: string,
    private readonly protocol: string,
    timeoutMs: number | undefined,
  ) {
    observers.metrics.start();
    this.requestId = header(headers, "x-request-id") || newRequestId();
    this.deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    this.traceSpan = serverSpan(headers, method.parent.typeName, method.name, {
      "rpc.system": "connect_rpc",
      "dispatch.request_id": this.requestId,
    });
  }

  get done(): boolean {
    return this.ended;
  }

  /** Records the call's outcome: metrics, span, one access-log line. */
  end(code: Code | 0): void {
    if (this.ended) return;
    this.ended = true;
    const seconds = (performance.now() - this.started) / 1000;
    this.observers.metrics.done(code, seconds);
    this.traceSpan?.end(code);
    const ids = this.traceSpan;
    this.observers.log.write({
      code,
      durationMs: Math.round(seconds * 1e6) / 1000,
      peer: this.peer,
      requestId: this.requestId,
      traceId: ids?.traceId,
      spanId: ids?.spanId,
      protocol: this.protocol,
    });
  }
}

/**
 * What every public call goes through, whichever path serves it (the lean unary paths in edge-unary.ts
 * or connect-node for everything else): rate limits, the access token, metrics, one log line, a span.
 */
export class EdgeCalls {
  private readonly observers = new Map<DescMethod, MethodObservers>();

  constructor(
    private readonly verifier: AccessTokenVerifier,
    private readonly limits: RateLimits,
    readonly logger: Logger,
  ) {}

  begin(
    method: DescMethod,
    headers: RequestHeaders,
    peer: string,
    protocol: string,
    timeoutMs: number | undefined,
  ): ObservedCall {
    let observers = this.observers.get(method);
    if (!observers) {
      const service = method.parent.typeName;
      observers = {
        metrics: new ServerMethodMetrics(method.methodKind, service, method.name),
        log: new RpcLog(this.logger, service, method.name),
      };
      this.observers.set(method, observers);
    }
    return new ObservedCall(observers, method, headers, peer, protocol, timeoutMs);
  }

  /**
   * Limits first, so a client looping on errors is refused before anything downstream; then the access
   * token of a non-public method. Resolves to the caller (undefined on public methods); rejects with a
   * ConnectError (RESOURCE_EXHAUSTED with Retry-After, UNAUTHENTICATED).
   */
  async admit(
    method: string,
    authorization: string | null,
    ip: string,
  ): Promise<AuthenticatedUser | undefined> {
    const address = ip || "unknown";
    if (PUBLIC_METHODS.has(method)) {
      await this.limits.consumeIp(address);
      return undefined;
    }
    // A token already verified costs nothing to recognise: both limits then go to Redis together (one
    // round trip). Any other token is checked only after the address's limit has passed.
    const known = this.verifier.known(authorization);
    if (known) {
      await Promise.all([this.limits.consumeIp(address), this.limits.consumeUser(known.userId)]);
      return known;
    }
    await this.limits.consumeIp(address);
    const user = await this.verifier.verify(authorization);
    await this.limits.consumeUser(user.userId);
    return user;
  }

  /** An error for the wire: ConnectErrors as they are; anything else is logged and becomes INTERNAL. */
  toConnectError(err: unknown, method: string): ConnectError {
    if (err instanceof ConnectError) return err;
    this.logger.error({ err, method }, "unexpected error at the edge");
    return new ConnectError("internal error", Code.Internal);
  }
}

export function header(headers: RequestHeaders, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The caller's deadline in ms: Connect's connect-timeout-ms, or gRPC's and gRPC-Web's grpc-timeout.
 * Undefined when there is none; NaN when one is present but malformed.
 */
export function timeoutOf(headers: RequestHeaders): number | undefined {
  const connect = header(headers, "connect-timeout-ms");
  if (connect !== undefined) return /^\d{1,10}$/.test(connect) ? Number(connect) : Number.NaN;
  const grpc = header(headers, "grpc-timeout");
  if (grpc === undefined) return undefined;
  return parseTimeout(grpc) ?? Number.NaN;
}
