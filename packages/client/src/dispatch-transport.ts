import type { DescMessage, DescMethodStreaming, DescMethodUnary, MessageInitShape } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  type ContextValues,
  type StreamResponse,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";
import { clientSpan, currentCall, injectInto, type OpenSpan } from "@dispatch/runtime";
import type { Logger } from "pino";
import {
  Balancer,
  type BalancingOptions,
  type Endpoint,
  type OutlierOptions,
  type Target,
} from "./balancer.ts";
import { type BreakerOptions, BreakerRegistry, CircuitOpenError } from "./breaker.ts";
import { createUnaryGrpcTransport } from "./grpc-unary-transport.ts";
import { budgetSpent, ClientMethodMetrics } from "./metrics.ts";
import {
  neverSent,
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
  target: Target;
  timeoutMs: number;
  breaker: BreakerOptions;
  /** false turns retries off. */
  retry: RetryOptions | false;
  retryBudget: RetryBudgetOptions;
  hedging: HedgingOptions | undefined;
  balancing: BalancingOptions;
  outlier: OutlierOptions;
  logger: Logger | undefined;
}

/** The parts of an outgoing unary call every attempt shares. */
interface UnaryCall<I extends DescMessage, O extends DescMessage> {
  method: DescMethodUnary<I, O>;
  path: string;
  signal: AbortSignal | undefined;
  header: Headers;
  input: MessageInitShape<I>;
  contextValues: ContextValues | undefined;
  deadline: number;
  metrics: ClientMethodMetrics;
}

/** Codes that say an endpoint is unwell (for outlier ejection); others describe the call. */
const endpointFailures = new Set([Code.Unavailable, Code.Internal, Code.Unknown, Code.DataLoss]);

/**
 * A connect Transport over a target's endpoints that adds what every hop needs: a deadline on every call
 * (never more than the incoming call has left), cancellation with the incoming call, x-request-id
 * propagation, balancing with outlier ejection, a circuit breaker per endpoint and method, gRFC A6
 * retries with a budget, transparent retries of calls that never left, and optional hedging.
 */
export class DispatchTransport implements Transport {
  readonly balancer: Balancer;
  readonly breakers: BreakerRegistry;
  private readonly retry: RetryPolicy | undefined;
  private readonly throttle: RetryThrottle;
  /** Attempts sent, first ones, retries, hedges and transparent retries; for tests and metrics. */
  attempts = 0;
  /** Keyed by the method's descriptor (a stable object): no key string to build per call. */
  private readonly metrics = new WeakMap<object, ClientMethodMetrics>();

  private metricsFor(method: DescMethodUnary<DescMessage, DescMessage>): ClientMethodMetrics {
    let m = this.metrics.get(method);
    if (!m) {
      m = new ClientMethodMetrics(this.opts.name, method.methodKind, method.parent.typeName, method.name);
      this.metrics.set(method, m);
    }
    return m;
  }

  constructor(private readonly opts: TransportOptions) {
    this.retry = opts.retry === false ? undefined : new RetryPolicy(opts.retry);
    this.throttle = new RetryThrottle(opts.retryBudget);
    this.breakers = new BreakerRegistry(opts.name, opts.breaker, opts.logger, (endpoint, method) =>
      this.balancer.ejectUrl(endpoint, `circuit open for ${method}`),
    );
    this.balancer = new Balancer(
      opts.name,
      opts.target,
      (url) => createUnaryGrpcTransport(url, sessionFor(url)),
      opts.balancing,
      opts.outlier,
      opts.logger,
    );
    if (opts.hedging) validateHedging(opts.name, opts.hedging);
  }

  async unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    input: MessageInitShape<I>,
    contextValues?: ContextValues,
  ): Promise<UnaryResponse<I, O>> {
    const metrics = this.metricsFor(method as DescMethodUnary<DescMessage, DescMessage>);
    const since = performance.now();
    metrics.start();
    const span = clientSpan(method.parent.typeName, method.name, this.opts.name);
    try {
      const res = await this.unaryCall(
        method,
        metrics,
        span,
        signal,
        timeoutMs,
        header,
        input,
        contextValues,
      );
      metrics.done(0, (performance.now() - since) / 1000);
      span?.end(0);
      return res;
    } catch (err) {
      const e = ConnectError.from(err);
      metrics.done(e.code, (performance.now() - since) / 1000);
      span?.end(e.code, e.rawMessage);
      throw err;
    }
  }

  private async unaryCall<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    metrics: ClientMethodMetrics,
    span: OpenSpan | undefined,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    input: MessageInitShape<I>,
    contextValues?: ContextValues,
  ): Promise<UnaryResponse<I, O>> {
    const prepared = this.prepare(method, signal, timeoutMs, header, span);
    const call: UnaryCall<I, O> = {
      method,
      path: `${method.parent.typeName}/${method.name}`,
      signal: prepared.signal,
      header: prepared.header,
      input,
      contextValues,
      deadline: Date.now() + prepared.timeoutMs,
      metrics,
    };
    await this.balancer.ready();
    if (this.opts.hedging && method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS)
      return this.hedge(call, this.opts.hedging);
    const retry = this.retry && RetryPolicy.methodAllows(method) ? this.retry : undefined;
    let last: Endpoint | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.attempt(call, last ? [last] : [], (e) => (last = e));
      } catch (err) {
        const e = ConnectError.from(err);
        // Retry only what the contract says is safe, on retryable codes, within attempts, budget and deadline.
        if (!retry || !retry.retryableCode(e.code) || attempt >= retry.maxAttempts || call.signal?.aborted)
          throw err;
        if (!this.throttle.allowsRetry) {
          budgetSpent(this.opts.name);
          throw err;
        }
        if (
          err instanceof CircuitOpenError &&
          this.balancer.list().every((x) => this.breakers.isOpen(x.url, call.path))
        )
          throw err;
        const push = pushback(e);
        if (push === "stop") throw err;
        const wait = push ?? retry.backoffMs(attempt);
        if (Date.now() + wait >= call.deadline) throw err;
        await sleep(wait, call.signal);
        metrics.retry("policy");
      }
    }
  }

  /**
   * One attempt as A6 counts them: sent to one endpoint (preferring one other than `avoid`). A call that
   * provably never reached a server (connection refused, stream refused by a draining server, breaker
   * open) moves at once to another endpoint, at most once per endpoint, whatever the method.
   */
  private async attempt<I extends DescMessage, O extends DescMessage>(
    call: UnaryCall<I, O>,
    avoid: Iterable<Endpoint>,
    onPicked: (e: Endpoint) => void,
    signal = call.signal,
  ): Promise<UnaryResponse<I, O>> {
    const tried = new Set<Endpoint>(avoid);
    for (;;) {
      const endpoint = this.balancer.pick((e) => !this.breakers.isOpen(e.url, call.path), tried);
      if (!endpoint) {
        throw new ConnectError(`${this.opts.name}: the target has no endpoints`, Code.Unavailable);
      }
      onPicked(endpoint);
      tried.add(endpoint);
      const left = Math.max(1, call.deadline - Date.now());
      this.attempts++;
      endpoint.inFlight++;
      try {
        const res = await this.breakers.run(endpoint.url, call.path, () =>
          endpoint.transport.unary(call.method, signal, left, call.header, call.input, call.contextValues),
        );
        this.throttle.onSuccess();
        this.balancer.report(endpoint, "ok");
        return res;
      } catch (err) {
        const code = ConnectError.from(err).code;
        const unsent = neverSent(err) || err instanceof CircuitOpenError;
        if (this.retry?.retryableCode(code) && !(err instanceof CircuitOpenError)) this.throttle.onFailure();
        if (!(err instanceof CircuitOpenError))
          this.balancer.report(
            endpoint,
            unsent ? "unreachable" : endpointFailures.has(code) ? "failure" : "ok",
          );
        const others = this.balancer.list().some((e) => !tried.has(e));
        if (!unsent || !others || signal?.aborted || Date.now() >= call.deadline) throw err;
        call.metrics.retry("transparent");
      } finally {
        endpoint.inFlight--;
      }
    }
  }

  /**
   * gRFC A6 hedging for NO_SIDE_EFFECTS methods: if no answer came within `delayMs`, the same call goes to
   * another endpoint too (up to `maxAttempts` in all, while the retry budget allows); the first answer wins
   * and the others are cancelled. A non-fatal error (a retryable code) sends the next hedge at once.
   */
  private hedge<I extends DescMessage, O extends DescMessage>(
    call: UnaryCall<I, O>,
    hedging: HedgingOptions,
  ): Promise<UnaryResponse<I, O>> {
    const max = Math.min(5, hedging.maxAttempts ?? 2);
    return new Promise((resolve, reject) => {
      const cancels: AbortController[] = [];
      const used = new Set<Endpoint>();
      let pending = 0;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = () => {
        settled = true;
        clearTimeout(timer);
        for (const c of cancels) c.abort(new ConnectError("another hedged attempt answered", Code.Canceled));
      };
      const launch = () => {
        if (settled || cancels.length >= max || call.signal?.aborted) return;
        if (cancels.length > 0 && !this.throttle.allowsRetry) {
          budgetSpent(this.opts.name);
          return;
        }
        if (cancels.length > 0) call.metrics.retry("hedge");
        const ac = new AbortController();
        cancels.push(ac);
        pending++;
        const signal = call.signal ? AbortSignal.any([call.signal, ac.signal]) : ac.signal;
        this.attempt(call, used, (e) => used.add(e), signal).then(
          (res) => {
            if (settled) return;
            finish();
            resolve(res);
          },
          (err) => {
            pending--;
            if (settled) return;
            // A fatal code ends the call at once; a non-fatal one sends the next hedge without waiting.
            if (this.retry?.retryableCode(ConnectError.from(err).code)) {
              clearTimeout(timer);
              launch();
              if (pending > 0) return;
            }
            finish();
            reject(err);
          },
        );
        if (cancels.length < max) timer = setTimeout(launch, hedging.delayMs);
      };
      launch();
    });
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
    await this.balancer.ready();
    const endpoint = this.balancer.pick(() => true);
    if (!endpoint) throw new ConnectError(`${this.opts.name}: the target has no endpoints`, Code.Unavailable);
    return endpoint.transport.stream(method, call.signal, call.timeoutMs, call.header, input, contextValues);
  }

  /** The deadline, signal and headers an outgoing call gets inside (or outside) an incoming one. */
  private prepare(
    method: { parent: { typeName: string }; name: string },
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    span?: OpenSpan,
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
      // Handlers usually pass the incoming call's own signal: combining a signal with itself would only
      // add an AbortSignal.any (its weak references keep the call's objects alive into the old generation).
      signal =
        signal && signal !== incoming.signal ? AbortSignal.any([signal, incoming.signal]) : incoming.signal;
      if (!headers.has("x-request-id")) headers.set("x-request-id", incoming.requestId);
    }
    injectInto(headers, span);
    return { signal, timeoutMs: Math.max(1, Math.floor(timeout)), header: headers };
  }
}

/** Hedging (gRFC A6) for NO_SIDE_EFFECTS methods; replaces retries for them when set. */
export interface HedgingOptions {
  /** Wait this long for an answer before sending the call to another endpoint too. */
  delayMs: number;
  /** Attempts in all, the first included. Default 2; at most 5. */
  maxAttempts?: number;
}

function validateHedging(name: string, h: HedgingOptions): void {
  if (!Number.isFinite(h.delayMs) || h.delayMs < 0)
    throw new Error(`client ${name}: hedging.delayMs must be a number of milliseconds >= 0`);
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
