import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectError } from "@connectrpc/connect";

/** Retries as gRFC A6 describes them: bounded attempts, exponential backoff with full jitter. */
export interface RetryOptions {
  /** Attempts in total, the first included. Default 3; at most 5. */
  maxAttempts?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  backoffMultiplier?: number;
  /** Codes that may be retried. Default UNAVAILABLE only. */
  retryableCodes?: Code[];
}

/** A6 retry throttling: a token bucket per client that switches retries off during an outage. */
export interface RetryBudgetOptions {
  /** Default 10. Retries are allowed while tokens > maxTokens / 2. */
  maxTokens?: number;
  /** Tokens a success gives back. Default 0.1: roughly one retry per ten successes once throttled. */
  tokenRatio?: number;
}

export class RetryPolicy {
  readonly maxAttempts: number;
  private readonly codes: Set<Code>;

  constructor(private readonly opts: RetryOptions = {}) {
    this.maxAttempts = Math.min(5, Math.max(1, opts.maxAttempts ?? 3));
    this.codes = new Set(opts.retryableCodes ?? [Code.Unavailable]);
  }

  /** Only methods the contract marks safe to repeat are ever retried. */
  static methodAllows(method: { idempotency: MethodOptions_IdempotencyLevel }): boolean {
    return (
      method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS ||
      method.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENT
    );
  }

  retryableCode(code: Code): boolean {
    return this.codes.has(code);
  }

  /** Full-jitter backoff before attempt `attempt + 1`. */
  backoffMs(attempt: number): number {
    const initial = this.opts.initialBackoffMs ?? 50;
    const ceiling = Math.min(
      this.opts.maxBackoffMs ?? 1000,
      initial * (this.opts.backoffMultiplier ?? 2) ** (attempt - 1),
    );
    return Math.random() * ceiling;
  }
}

export class RetryThrottle {
  private tokens: number;
  private readonly max: number;
  private readonly ratio: number;

  constructor(opts: RetryBudgetOptions = {}) {
    this.max = opts.maxTokens ?? 10;
    this.ratio = opts.tokenRatio ?? 0.1;
    this.tokens = this.max;
  }

  onSuccess(): void {
    this.tokens = Math.min(this.max, this.tokens + this.ratio);
  }

  onFailure(): void {
    this.tokens = Math.max(0, this.tokens - 1);
  }

  get allowsRetry(): boolean {
    return this.tokens > this.max / 2;
  }
}

/**
 * The server's grpc-retry-pushback-ms: a delay to use instead of backoff, or "stop" when it is negative
 * or malformed (the server asks not to retry); undefined when absent.
 */
export function pushback(err: ConnectError): number | "stop" | undefined {
  const v = err.metadata.get("grpc-retry-pushback-ms");
  if (v === null) return undefined;
  return /^\d+$/.test(v) ? Number(v) : "stop";
}

/** Node error codes meaning the request never reached a server: no connection, or a stream it refused. */
const unsentCodes = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ERR_HTTP2_GOAWAY_SESSION",
  "ERR_HTTP2_INVALID_SESSION",
]);

/**
 * True when the call provably never reached the server's application: the connection could not be made,
 * the stream was refused (REFUSED_STREAM, as a draining server answers), or the breaker stopped it.
 * gRFC A6 retries such calls transparently, whatever the method's idempotency.
 */
export function neverSent(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && unsentCodes.has(code)) return true;
    if (e.message.includes("REFUSED_STREAM")) return true;
  }
  return false;
}
