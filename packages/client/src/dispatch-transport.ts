import type { DescMessage, DescMethodStreaming, DescMethodUnary, MessageInitShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  type StreamResponse,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { currentCall } from "@dispatch/runtime";
import type { Logger } from "pino";
import { type BreakerOptions, BreakerRegistry, CircuitOpenError } from "./breaker.ts";
import { EndpointPicker } from "./endpoint-picker.ts";
import {
  pushback,
  type RetryBudgetOptions,
  type RetryOptions,
  RetryPolicy,
  RetryThrottle,
} from "./retry-policy.ts";
import { sessionFor } from "./sessions.ts";

type HeadersInit = ConstructorParameters<typeof Headers>[0];

export interface TransportOptions {
  name: string;
  endpoints: string[];
  timeoutMs: number;
  breaker: BreakerOptions;
  /** false turns retries off. */
  retry: RetryOptions | false;
  retryBudget: RetryBudgetOptions;
  logger: Logger | undefined;
}

/**
 * A connect Transport over several endpoints that adds what every hop needs: a deadline on every call
 * (never more than the incoming call has left), cancellation with the incoming call, x-request-id
 * propagation, round-robin, and a circuit breaker per endpoint and method.
 */
export class DispatchTransport implements Transport {
  private readonly picker: EndpointPicker;
  private readonly transports = new Map<string, Transport>();
  readonly breakers: BreakerRegistry;
  private readonly retry: RetryPolicy | undefined;
  private readonly throttle: RetryThrottle;
  /** Attempts sent, first ones and retries; for tests and metrics. */
  attempts = 0;

  constructor(private readonly opts: TransportOptions) {
    this.retry = opts.retry === false ? undefined : new RetryPolicy(opts.retry);
    this.throttle = new RetryThrottle(opts.retryBudget);
    this.picker = new EndpointPicker(opts.endpoints);
    for (const e of opts.endpoints) {
      this.transports.set(e, createGrpcTransport({ baseUrl: e, sessionManager: sessionFor(e) }));
    }
    this.breakers = new BreakerRegistry(opts.name, opts.breaker, opts.logger);
  }

  async unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    input: MessageInitShape<I>,
    contextValues?: ContextValues,
  ): Promise<UnaryResponse<I, O>> {
    const call = this.prepare(method, signal, timeoutMs, header);
    const path = `${method.parent.typeName}/${method.name}`;
    const deadline = Date.now() + call.timeoutMs;
    const retry = this.retry && RetryPolicy.methodAllows(method) ? this.retry : undefined;
    for (let attempt = 1; ; attempt++) {
      const endpoint = this.picker.pick((e) => !this.breakers.isOpen(e, path));
      const transport = this.transports.get(endpoint)!;
      const left = Math.max(1, deadline - Date.now());
      this.attempts++;
      try {
        const res = await this.breakers.run(endpoint, path, () =>
          transport.unary(method, call.signal, left, call.header, input, contextValues),
        );
        this.throttle.onSuccess();
        return res;
      } catch (err) {
        const e = ConnectError.from(err);
        if (this.retry?.retryableCode(e.code)) this.throttle.onFailure();
        // Retry only what the contract says is safe, on retryable codes, within attempts, budget and deadline.
        if (
          !retry ||
          !retry.retryableCode(e.code) ||
          attempt >= retry.maxAttempts ||
          !this.throttle.allowsRetry
        )
          throw err;
        if (call.signal?.aborted) throw err;
        if (
          err instanceof CircuitOpenError &&
          this.opts.endpoints.every((x) => this.breakers.isOpen(x, path))
        )
          throw err;
        const push = pushback(e);
        if (push === "stop") throw err;
        const wait = push ?? retry.backoffMs(attempt);
        if (Date.now() + wait >= deadline) throw err;
        await sleep(wait, call.signal);
      }
    }
  }

  async stream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodStreaming<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    input: AsyncIterable<MessageInitShape<I>>,
    contextValues?: ContextValues,
  ): Promise<StreamResponse<I, O>> {
    const call = this.prepare(method, signal, timeoutMs, header);
    const endpoint = this.picker.pick(() => true);
    return this.transports
      .get(endpoint)!
      .stream(method, call.signal, call.timeoutMs, call.header, input, contextValues);
  }

  /** The deadline, signal and headers an outgoing call gets inside (or outside) an incoming one. */
  private prepare(
    method: { parent: { typeName: string }; name: string },
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
  ): { signal: AbortSignal | undefined; timeoutMs: number; header: Headers } {
    let timeout = timeoutMs ?? this.opts.timeoutMs;
    const incoming = currentCall();
    const headers = new Headers(header);
    if (incoming) {
      if (incoming.deadline !== undefined) {
        const left = incoming.deadline - Date.now();
        if (left <= 0) {
          throw new ConnectError(
            `not calling ${this.opts.name} (${method.parent.typeName}/${method.name}): the incoming call's deadline has passed`,
            Code.DeadlineExceeded,
          );
        }
        timeout = Math.min(timeout, left);
      }
      if (incoming.signal.aborted) {
        throw new ConnectError(
          `not calling ${this.opts.name}: the incoming call was cancelled`,
          Code.Canceled,
        );
      }
      signal = signal ? AbortSignal.any([signal, incoming.signal]) : incoming.signal;
      if (!headers.has("x-request-id")) headers.set("x-request-id", incoming.requestId);
    }
    return { signal, timeoutMs: Math.max(1, Math.floor(timeout)), header: headers };
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
