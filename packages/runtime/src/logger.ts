import { createRequire } from "node:module";
import pino, { type Logger } from "pino";
import { CODE_NAMES } from "./metrics.ts";
import { logIds } from "./tracing.ts";

const requireOptional = createRequire(import.meta.url);

export type { Logger };

/**
 * Never written to a log, at any depth a handler or library is likely to put them: credentials (the
 * authorization header, passwords, tokens, keys, secrets) and personal data (emails, phone numbers,
 * addresses, push tokens). pino replaces them before the line is serialized.
 */
const SENSITIVE = [
  "authorization",
  "password",
  "newPassword",
  "token",
  "accessToken",
  "refreshToken",
  "pushToken",
  "idToken",
  "secret",
  "apiKey",
  "privateKey",
  "email",
  "phone",
  "deliveryAddress",
];
export const REDACTED = SENSITIVE.flatMap((k) => [
  k,
  `*.${k}`,
  `*.*.${k}`,
  `*.headers.${k}`,
  `*.headers["${k.toLowerCase()}"]`,
]);

/**
 * JSON logs to stdout (buffered, written 4 KiB at a time, so a line costs the request path ~1 µs);
 * human-readable when a developer watches a terminal. Level from the argument, else LOG_LEVEL, else info.
 */
export function createLogger(opts: {
  name: string;
  level?: string;
  /** Where lines go instead of stdout (tests). */
  destination?: pino.DestinationStream;
}): Logger {
  const level = opts.level ?? process.env.LOG_LEVEL ?? "info";
  const options: pino.LoggerOptions = {
    name: opts.name,
    level,
    base: { service: opts.name },
    // The current span's trace_id and span_id on every line written inside a traced call.
    mixin: logIds,
  };
  const pair = (dest: pino.DestinationStream) => {
    const logger = pino({ ...options, redact: { paths: REDACTED, censor: "[redacted]" } }, dest);
    // RPC lines carry the call's trace ids as fields already; no mixin lookup per line.
    access.set(logger, pino({ ...options, mixin: undefined }, dest));
    return logger;
  };
  if (opts.destination) return pair(opts.destination);
  if (process.env.NODE_ENV !== "production" && process.stdout.isTTY) {
    // Required only here, so the production bundles need not carry a pretty-printer.
    const pretty = requireOptional("pino-pretty") as typeof import("pino-pretty");
    return pair(pretty({ colorize: true, ignore: "pid,hostname,service", translateTime: "SYS:HH:MM:ss.l" }));
  }
  // Buffered writes: one write(2) per ~4 KiB of log lines instead of one per RPC. A quiet service still
  // shows its lines within 200 ms, and the buffer is written out when the process exits.
  // sonic-boom's string mode measures the UTF-8 length of the whole pending chunk on every line (a
  // growing rope it flattens each time: 9 % of a hop's CPU in `pnpm bench:profile`); its buffer mode
  // keeps running lengths, so lines go in as Buffers.
  // Synchronous: each 4 KiB goes out with write(2) on this thread, as pino's own default destination
  // does. Asynchronously, every write was a trip through libuv's thread pool and back: 1.7-2.3 µs of CPU
  // per line against 1.0-1.2 µs (20,000 turns of 30 RPC lines each; docs/BENCHMARKS-ROUNDS.md, "Fourteenth
  // round"). A stdout that blocks holds the writer as it would hold pino's default.
  // periodicFlush: sonic-boom's own timer, which flushes without queueing a callback. (Calling flush(cb)
  // on a timer added a "drain" listener each time, and under sustained load, when the buffer never
  // drains, they piled up: MaxListenersExceededWarning in `pnpm bench:hop`.)
  const boom = pino.destination({
    dest: 1,
    sync: true,
    minLength: 4096,
    contentMode: "buffer",
    periodicFlush: 200,
  });
  flushOnExit(boom);
  const logger = pair({
    write: (line: string) => boom.write(Buffer.from(line) as unknown as string),
    flush: (cb?: (err?: Error) => void) => boom.flush(cb),
    flushSync: () => boom.flushSync(),
  } as unknown as pino.DestinationStream);
  return logger;
}

const access = new WeakMap<Logger, Logger>();

/** Destinations whose buffered lines are written when the process exits (pino does so only for async ones). */
const pending = new Set<{ flushSync(): void }>();

function flushOnExit(dest: { flushSync(): void }): void {
  if (pending.size === 0)
    process.once("exit", () => {
      for (const d of pending) {
        try {
          d.flushSync();
        } catch {
          // stdout is gone (EPIPE): nothing left to write to
        }
      }
    });
  pending.add(dest);
}

/**
 * The logger for the one line per RPC: same stream, level and fields as `logger`, without redaction.
 * Those lines carry a fixed set of fields the runtime fills (method, code, duration, peer, request and
 * trace ids), never request data; and redaction's wildcard paths cost more than the call itself
 * (`pnpm bench:hop`: 10.7k req/s with, 30.6k without). Everything else — handlers, libraries, errors —
 * goes through the redacting logger.
 */
export function accessLogger(logger: Logger): Logger {
  return access.get(logger) ?? logger;
}

/** gRPC codes that mean the server failed (not the caller): their RPC lines are errors. */
const SERVER_FAULTS = new Set([2, 13, 15]); // Unknown, Internal, DataLoss

/** What the one line per RPC says. */
export interface RpcLineFields {
  code: number;
  durationMs: number;
  peer: string;
  requestId: string;
  /** W3C ids (lowercase hex, as the tracing module makes or validates them). */
  traceId?: string | undefined;
  spanId?: string | undefined;
  /** The gateway's public calls: the protocol the call came in on. */
  protocol?: string | undefined;
}

/**
 * One method's line per RPC, assembled here instead of by pino's general serializer: its fields are
 * fixed, so the line is a template. pino spent ~1.7 µs a line against ~0.3 µs for the template (a
 * micro-benchmark of the same fields), and its objects were a share of the hop's GC. It writes to the
 * same stream, with the same level rules and the same JSON (keys in the same order) as
 * `accessLogger(logger).child({ rpc: { service, method } })` writes at `info` (`error` for server faults)
 * for the same fields and message "rpc" (test: logger.spec.ts),
 * using pino's exported symbols for the child's serialized bindings and its stream.
 */
export class RpcLog {
  /** The method's access logger, for its other lines (shedding summaries). */
  readonly logger: Logger;
  private readonly bindings: string;
  private readonly stream: pino.DestinationStream;

  constructor(logger: Logger, service: string, method: string) {
    this.logger = accessLogger(logger).child({ rpc: { service, method } });
    const internals = this.logger as unknown as Record<symbol, unknown>;
    this.bindings = internals[pino.symbols.chindingsSym] as string;
    this.stream = internals[pino.symbols.streamSym] as pino.DestinationStream;
  }

  write(f: RpcLineFields): void {
    const level = SERVER_FAULTS.has(f.code) ? 50 : 30;
    if (level < this.logger.levelVal) return;
    let line = `{"level":${level},"time":${Date.now()}${this.bindings},"code":"${CODE_NAMES[f.code] ?? f.code}","durationMs":${f.durationMs},"peer":${JSON.stringify(f.peer)},"requestId":${JSON.stringify(f.requestId)}`;
    if (f.traceId !== undefined) line += `,"trace_id":"${f.traceId}","span_id":"${f.spanId}"`;
    if (f.protocol !== undefined) line += `,"protocol":${JSON.stringify(f.protocol)}`;
    this.stream.write(`${line},"msg":"rpc"}\n`);
  }
}
