import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import type { OpenSpan } from "./tracing.ts";

/**
 * What outgoing calls and database queries need to know about the incoming call they serve:
 * when it must be done and how to notice it was abandoned.
 */
export interface CallContext {
  /** Fires when the caller cancels, the deadline passes, or the server gives up on the call. */
  readonly signal: AbortSignal;
  /** Absolute deadline in epoch milliseconds, or undefined when the caller set none. */
  readonly deadline: number | undefined;
  /** The caller's x-request-id, or one generated for this call. */
  readonly requestId: string;
  /**
   * The call's server span (sampled or not) when tracing is on. Carried here rather than in a second
   * AsyncLocalStorage: outgoing calls, SQL spans and log lines find it through currentCall().
   */
  readonly traceSpan?: OpenSpan | undefined;
}

const storage = new AsyncLocalStorage<CallContext>();

/** A signal that never aborts: an ended call's, when it ended without being cancelled. */
const NEVER_ABORTED = new AbortController().signal;

/**
 * What a call leaves in its async context (the store runInCall sets): its ids, its deadline, and the call
 * itself only while its handler runs. Everything created inside the handler keeps the store alive with
 * the async context it captured: promises, timers, and node's native handles (a client HTTP/2 stream, a
 * socket write), which V8's young-generation collections cannot free before a full collection. Holding
 * the whole call there (its stream, headers, request and context values) had those collections carry
 * the call into the old generation; `end()` lets it go when the handler is done.
 */
export class CallScope implements CallContext {
  readonly deadline: number | undefined;
  readonly requestId: string;
  readonly traceSpan: OpenSpan | undefined;
  private call: CallContext | undefined;
  private endedSignal: AbortSignal | undefined;

  constructor(call: CallContext) {
    this.call = call;
    this.deadline = call.deadline;
    this.requestId = call.requestId;
    this.traceSpan = call.traceSpan;
  }

  /** The call's signal while its handler runs; after, aborted if the call was cancelled, else one that never aborts. */
  get signal(): AbortSignal {
    return this.call?.signal ?? this.endedSignal ?? NEVER_ABORTED;
  }

  /** The handler is done: keep only the ids, and the signal if it had aborted. */
  end(abortedSignal?: AbortSignal): void {
    this.call = undefined;
    this.endedSignal = abortedSignal?.aborted ? abortedSignal : undefined;
  }
}

/** The call being handled by the current async execution, if any. */
export function currentCall(): CallContext | undefined {
  return storage.getStore();
}

/** Runs fn with ctx as the current call for everything it awaits or schedules. */
export function runInCall<T>(ctx: CallContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

/**
 * The request id of a call that came without one. UUID-shaped (RFC 9562 version 8, the custom layout):
 * 74 random bits drawn once per process, then a counter of the process's calls in the last 48 bits, so
 * ids are unique across processes and never repeat within one. `randomUUID()` per call was a tenth of
 * what the hop's runtime allocated for its own work: it hex-encodes 16 random bytes piece by piece, ~570
 * bytes of strings per id in a sampling heap profile of the hop, against one short string here.
 */
const REQUEST_ID_PREFIX = (() => {
  const b = randomBytes(10);
  b[6] = (b[6]! & 0x0f) | 0x80; // version 8
  b[8] = (b[8]! & 0x3f) | 0x80; // variant 10
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-`;
})();
let requestCounter = 0;

export function newRequestId(): string {
  requestCounter = (requestCounter + 1) % 2 ** 48;
  return REQUEST_ID_PREFIX + requestCounter.toString(16).padStart(12, "0");
}
