import { AsyncLocalStorage } from "node:async_hooks";
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

/** The call being handled by the current async execution, if any. */
export function currentCall(): CallContext | undefined {
  return storage.getStore();
}

/** Runs fn with ctx as the current call for everything it awaits or schedules. */
export function runInCall<T>(ctx: CallContext, fn: () => T): T {
  return storage.run(ctx, fn);
}
