import { Code, ConnectError } from "@connectrpc/connect";
import CircuitBreaker from "opossum";
import type { Logger } from "pino";
import { breakerChanged } from "./metrics.ts";

export interface BreakerOptions {
  /** How long the breaker stays open before a half-open probe. Default 1000 ms: a replica back from a
   *  restart gets traffic within a second, and a dead one costs one probe per second. */
  resetTimeoutMs?: number;
  /** Failure percentage (of counted calls in the window) that opens it. Default 50. */
  errorThresholdPercentage?: number;
  /** Calls in the window before it may open at all. Default 10. */
  volumeThreshold?: number;
  /** Length of the statistics window: short, so an endpoint that dies under load trips it within a second. Default 1000 ms. */
  rollingCountTimeoutMs?: number;
}

/** Errors that describe the request, not the health of the endpoint: they never trip a breaker. */
const callerErrors = new Set([
  Code.InvalidArgument,
  Code.NotFound,
  Code.AlreadyExists,
  Code.FailedPrecondition,
  Code.PermissionDenied,
  Code.Unauthenticated,
  Code.OutOfRange,
  Code.Canceled,
]);

export function isCallerError(err: unknown): boolean {
  return err instanceof ConnectError && callerErrors.has(err.code);
}

type Thunk = () => Promise<unknown>;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The call was not sent: the endpoint's breaker is open. */
export class CircuitOpenError extends ConnectError {
  readonly circuitOpen = true;

  constructor(message: string) {
    super(message, Code.Unavailable);
  }

  // ConnectError's own Symbol.hasInstance would call every ConnectError a CircuitOpenError.
  static override [Symbol.hasInstance](v: unknown): boolean {
    return typeof v === "object" && v !== null && (v as { circuitOpen?: unknown }).circuitOpen === true;
  }
}

/** One opossum breaker per (endpoint, method), created on first use. */
export class BreakerRegistry {
  private readonly breakers = new Map<string, CircuitBreaker<[Thunk], unknown>>();

  constructor(
    private readonly name: string,
    private readonly opts: BreakerOptions,
    private readonly logger: Logger | undefined,
    private readonly onOpen?: (endpoint: string, method: string) => void,
  ) {}

  /**
   * Whether the breaker turns calls away now: open, or half-open with its one probe already sent (opossum
   * rejects every other call then, as when open). Half-open before the probe, a call may go: it is the probe.
   */
  isOpen(endpoint: string, method: string): boolean {
    const b = this.breakers.get(`${endpoint} ${method}`);
    return b !== undefined && !b.closed && !b.pendingClose;
  }

  /** Runs `call` through the breaker; while open, fails at once with UNAVAILABLE naming the target. */
  async run<T>(endpoint: string, method: string, call: () => Promise<T>): Promise<T> {
    const breaker = this.get(endpoint, method);
    try {
      return (await breaker.fire(call)) as T;
    } catch (err) {
      if ((err as { code?: string }).code === "EOPENBREAKER") {
        throw new CircuitOpenError(`circuit open: ${this.name} at ${endpoint} (${method})`);
      }
      throw err;
    }
  }

  shutdown(): void {
    for (const b of this.breakers.values()) b.shutdown();
    this.breakers.clear();
  }

  private get(endpoint: string, method: string): CircuitBreaker<[Thunk], unknown> {
    const key = `${endpoint} ${method}`;
    let b = this.breakers.get(key);
    if (!b) {
      // Half-open, the call opossum lets through is the probe: it goes on the next turn of the event loop,
      // so the calls turned away beside it settle first instead of after its connection's set-up (a new
      // HTTP/2 session to an endpoint that was down: 6-9 ms of the event loop measured on this VM, where
      // memory a process has not touched for a few hundred ms is slow to touch again; docs/RELIABILITY.md).
      const breaker: CircuitBreaker<[Thunk], unknown> = new CircuitBreaker(
        (call: Thunk) => (breaker.halfOpen ? nextTurn().then(call) : call()),
        {
          // Deadlines bound every call already; a second timer here would only disagree with them.
          timeout: false,
          resetTimeout: this.opts.resetTimeoutMs ?? 1000,
          errorThresholdPercentage: this.opts.errorThresholdPercentage ?? 50,
          volumeThreshold: this.opts.volumeThreshold ?? 10,
          rollingCountTimeout: this.opts.rollingCountTimeoutMs ?? 1000,
          errorFilter: isCallerError,
          // The window's counts only. By default opossum also gathers the latencies of every call in the
          // window and sorts them for percentiles no one reads, on each failure (its check whether to
          // open) and every tenth of the window: with a third of the calls failing that was 16-28 µs of
          // CPU a call (docs/BENCHMARKS-ROUNDS.md, thirty-first round). Whether to open is decided on
          // the counts alone either way.
          enableSnapshots: false,
          rollingPercentilesEnabled: false,
        },
      );
      b = breaker;
      const fields = { target: this.name, endpoint, method };
      b.on("open", () => {
        this.logger?.warn(fields, "circuit opened");
        breakerChanged(this.name, endpoint, method, "open");
        this.onOpen?.(endpoint, method);
      });
      b.on("halfOpen", () => {
        this.logger?.info(fields, "circuit half-open: probing");
        breakerChanged(this.name, endpoint, method, "halfOpen");
      });
      b.on("close", () => {
        this.logger?.info(fields, "circuit closed");
        breakerChanged(this.name, endpoint, method, "closed");
      });
      this.breakers.set(key, b);
    }
    return b;
  }
}
