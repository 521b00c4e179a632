import { once } from "node:events";
import http2 from "node:http2";
import { performance } from "node:perf_hooks";
import { gunzipSync, inflateSync } from "node:zlib";
import { create, type DescMessage, type DescService, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type { Logger } from "pino";
import { CallScope, newRequestId, runInCall } from "./call-context.ts";
import { DispatchError, toWireStatus } from "./errors.ts";
import {
  encodeGrpcMessage,
  frame,
  MessageReader,
  MessageTooLargeError,
  parseTimeout,
  type RawMessage,
} from "./grpc-protocol.ts";
import type { HandlerContext, ServiceRegistration } from "./handler.ts";
import { accessLogger, RpcLog } from "./logger.ts";
import { CODE_NAMES, ServerMethodMetrics } from "./metrics.ts";
import { type OpenSpan, serverSpan } from "./tracing.ts";

type Kind = "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";
// biome-ignore lint/complexity/noBannedTypes: implementations are checked against descriptors at registration
type AnyImpl = Function;

interface MethodEntry {
  /** Logger with this method's fields bound once (pino serializes bindings at creation). */
  log: Logger;
  /** The one line per RPC (see RpcLog). */
  rpcLog: RpcLog;
  service: string;
  method: string;
  kind: Kind;
  input: DescMessage;
  output: DescMessage;
  impl: AnyImpl | undefined;
  metrics: ServerMethodMetrics;
}

const SUPPORTED_ENCODINGS = "identity,gzip,deflate";
/** connect's Code enum has no member for success. */
const OK = 0 as Code;
const peers = new WeakMap<http2.ServerHttp2Session, string>();
/** The status of a call that ended well, sent as its trailers (node copies the object it is given). */
const OK_TRAILERS: Readonly<Record<string, string>> = Object.freeze({ "grpc-status": "0" });
const WAIT_FOR_TRAILERS = Object.freeze({ waitForTrailers: true });

let dateSecond = 0;
let dateValue = "";
/** The Date header's value (what node sends by default), made once a second. */
function httpDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(second * 1000).toUTCString();
  }
  return dateValue;
}

/**
 * The stream's listeners are these module-level functions (node calls them with the stream as `this`),
 * each finding its call on the stream, rather than closures made per call and `once` wrappers removed
 * again: every one of these events fires once per stream.
 */
const kCall = Symbol("dispatch.call");
type CallStream = http2.ServerHttp2Stream & { [kCall]?: ServerCall };
function ignoreStreamError(): void {}
function onCallClose(this: CallStream): void {
  const call = this[kCall]!;
  call.onClose();
  call.server.forget(call);
  // Node keeps a closed stream object alive past V8's next young-generation collection: detached, the
  // call (its request, handler context, headers and log fields) no longer goes to the old generation
  // with it.
  this[kCall] = undefined;
}
function onCallWantTrailers(this: CallStream): void {
  this[kCall]!.sendTrailers();
}
function onUnaryData(this: CallStream, chunk: Buffer): void {
  this[kCall]!.onUnaryData(chunk);
}
function onUnaryEnd(this: CallStream): void {
  this[kCall]!.onUnaryEnd();
}

export interface GrpcServerOptions {
  logger: Logger;
  maxReceiveMessageBytes: number;
  /** Calls in flight above which new ones are shed with RESOURCE_EXHAUSTED (health is exempt). */
  maxInFlight: number;
  /** Sent as grpc-retry-pushback-ms with shed calls: how long a client should wait before retrying. */
  shedPushbackMs: number;
}

/**
 * The most memory (MB) node lets one HTTP/2 connection hold (nghttp2's state, queued frames, and since
 * Node 24.22.3 the request bytes its streams have not yet read) before it fails that connection's new
 * streams. Node's default is 10. Fault scenario 7 (a paused process, thousands of calls piled up on each
 * of two connections, arriving at once on resume) needs more: on Node 24.22.3 with the default, 43-55 %
 * of its calls ended in RST_STREAM INTERNAL_ERROR ("The user callback function failed") or with no
 * status at all, and with 20 MB still thousands; with 32 MB and 64 MB every call was answered OK or
 * RESOURCE_EXHAUSTED, two runs each. 64 keeps it bounded with room to spare; the gateway's public port
 * keeps node's default (services/gateway/src/edge-server.ts).
 */
const SESSION_MEMORY_MB = 64;

/**
 * gRPC on node:http2 streams. Speaks the protocol directly (framing, grpc-timeout, trailers, status
 * details) instead of going through a general framework, because the hot path is where the time goes.
 */
export class GrpcServer {
  readonly http2: http2.Http2Server;
  private readonly methods = new Map<string, MethodEntry>();
  private readonly calls = new Set<ServerCall>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private draining = false;
  private readonly shedCounts = new Map<MethodEntry, number>();
  private shedTimer: NodeJS.Timeout | undefined;
  private drainWaiter: (() => void) | undefined;

  constructor(readonly opts: GrpcServerOptions) {
    // No cap on concurrent streams is advertised (node's default, like grpc-go's): MAX_IN_FLIGHT sheds
    // the load. With a cap (it was 1000), a client that piled calls up while the process was paused hit
    // it in a burst on resume, and nghttp2 answered a stream over it with GOAWAY PROTOCOL_ERROR ("max
    // concurrent streams exceeded"), failing every call on the connection (fault scenario 7).
    this.http2 = http2.createServer({ maxSessionMemory: SESSION_MEMORY_MB });
    this.http2.on("stream", (stream, headers) => this.onStream(stream, headers));
    this.http2.on("session", (session) => {
      this.sessions.add(session);
      session.on("error", () => {});
      session.on("close", () => this.sessions.delete(session));
      if (this.draining) session.close();
    });
    this.http2.on("sessionError", () => {});
  }

  register(registration: ServiceRegistration): void {
    const [service, impl] = registration as readonly [DescService, Record<string, AnyImpl | undefined>];
    for (const m of service.methods) {
      this.methods.set(`/${service.typeName}/${m.name}`, {
        log: this.opts.logger.child({ rpc: { service: service.typeName, method: m.name } }),
        rpcLog: new RpcLog(this.opts.logger, service.typeName, m.name),
        service: service.typeName,
        method: m.name,
        kind: m.methodKind,
        input: m.input,
        output: m.output,
        impl: impl[m.localName]?.bind(impl),
        metrics: new ServerMethodMetrics(m.methodKind, service.typeName, m.name),
      });
    }
  }

  get inFlight(): number {
    return this.calls.size;
  }

  /** Stops taking calls: GOAWAY on every connection; calls that arrive anyway get UNAVAILABLE. */
  startDrain(): void {
    this.draining = true;
    for (const s of this.sessions) s.close();
  }

  /**
   * Resolves when every call in flight has ended and every connection has closed, or after `ms`; then
   * cancels what is left. Connections close on their own once their last stream ends (we sent GOAWAY);
   * destroying them earlier would reset streams the server has already answered or refused but not
   * yet flushed, and the client would see CANCEL for a call it could have retried.
   */
  async waitForCalls(ms: number): Promise<void> {
    const until = Date.now() + ms;
    if (this.calls.size > 0) {
      const done = new Promise<void>((r) => {
        this.drainWaiter = r;
      });
      const timer = setTimeout(() => this.drainWaiter?.(), ms);
      await done;
      clearTimeout(timer);
    }
    for (const call of this.calls) {
      call.cancel(Code.Unavailable, "server shut down before the call finished");
    }
    const open = [...this.sessions].filter((s) => !s.destroyed);
    if (open.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(open.map((s) => new Promise((r) => s.once("close", r)))),
        new Promise((r) => {
          timer = setTimeout(r, Math.max(until - Date.now(), 1000));
        }),
      ]);
      clearTimeout(timer);
    }
    for (const s of this.sessions) s.destroy();
  }

  private onStream(stream: CallStream, headers: http2.IncomingHttpHeaders): void {
    stream.on("error", ignoreStreamError);
    const path = headers[":path"] ?? "";
    if (headers[":method"] !== "POST") {
      respondHttp(stream, 405, "gRPC calls use POST");
      return;
    }
    const ct = headers["content-type"];
    if (
      typeof ct !== "string" ||
      !(
        ct === "application/grpc" ||
        ct.startsWith("application/grpc+proto") ||
        ct.startsWith("application/grpc;")
      )
    ) {
      respondHttp(stream, 415, `unsupported content-type ${ct ?? "(none)"}; expected application/grpc`);
      return;
    }
    const entry = this.methods.get(path);
    const started = performance.now();
    if (!entry?.impl) {
      const [, svc = "", method = ""] = path.split("/");
      const known = [...this.methods.values()].some((m) => m.service === svc);
      const message = entry
        ? `method ${path} is not implemented`
        : known
          ? `unknown method ${method} of ${svc}`
          : `unknown service ${svc}`;
      this.earlyStatus(stream, Code.Unimplemented, message, svc, method, headers, started);
      return;
    }
    if (this.draining) {
      // A stream that raced our GOAWAY is refused at the HTTP/2 level, as grpc-go does: REFUSED_STREAM
      // tells any gRPC client the call never ran, so it may move it to another replica whatever the method.
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    // Shed load early and cheaply rather than queue without bound; health must answer under overload.
    if (this.calls.size >= this.opts.maxInFlight && entry.service !== "grpc.health.v1.Health") {
      entry.metrics.shed();
      entry.metrics.start();
      entry.metrics.done(Code.ResourceExhausted, (performance.now() - started) / 1000);
      this.earlyStatus(
        stream,
        Code.ResourceExhausted,
        `server is at its limit of ${this.opts.maxInFlight} calls in flight`,
        entry.service,
        entry.method,
        headers,
        started,
        { "grpc-retry-pushback-ms": String(this.opts.shedPushbackMs) },
        false,
      );
      this.noteShed(entry);
      return;
    }
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity" && encoding !== "gzip" && encoding !== "deflate") {
      entry.metrics.start();
      entry.metrics.done(Code.Unimplemented, (performance.now() - started) / 1000);
      this.earlyStatus(
        stream,
        Code.Unimplemented,
        `grpc-encoding ${encoding} is not supported`,
        entry.service,
        entry.method,
        headers,
        started,
        { "grpc-accept-encoding": SUPPORTED_ENCODINGS },
      );
      return;
    }
    const call = new ServerCall(stream, headers, entry, this, started);
    this.calls.add(call);
    stream[kCall] = call;
    stream.on("close", onCallClose);
    call.start();
  }

  /** @internal The call's stream closed. */
  forget(call: ServerCall): void {
    this.calls.delete(call);
    if (this.calls.size === 0) this.drainWaiter?.();
  }

  private earlyStatus(
    stream: http2.ServerHttp2Stream,
    code: Code,
    message: string,
    service: string,
    method: string,
    headers: http2.IncomingHttpHeaders,
    started: number,
    extra: Record<string, string> = {},
    log = true,
  ): void {
    if (!stream.destroyed && !stream.headersSent) {
      stream.respond(
        {
          ":status": 200,
          "content-type": "application/grpc",
          "grpc-status": String(code),
          "grpc-message": encodeGrpcMessage(message),
          ...extra,
        },
        { endStream: true },
      );
    }
    if (!log) return;
    accessLogger(this.opts.logger).info(
      {
        rpc: { service, method },
        code: CODE_NAMES[code],
        durationMs: round(performance.now() - started),
        peer: peerOf(stream),
        requestId: headerString(headers["x-request-id"]),
      },
      "rpc",
    );
  }

  /**
   * Shed calls are counted (metrics, per call) but logged as one line per method per second: a line per
   * refused call would spend the CPU that shedding exists to save (scenario 6 sheds ~5,000 calls/s).
   */
  private noteShed(entry: MethodEntry): void {
    this.shedCounts.set(entry, (this.shedCounts.get(entry) ?? 0) + 1);
    if (this.shedTimer) return;
    this.shedTimer = setTimeout(() => {
      this.shedTimer = undefined;
      for (const [e, calls] of this.shedCounts)
        e.rpcLog.logger.info(
          { code: CODE_NAMES[Code.ResourceExhausted], shed: calls, inFlightLimit: this.opts.maxInFlight },
          "calls shed in the last second",
        );
      this.shedCounts.clear();
    }, 1000);
    this.shedTimer.unref();
  }

  /** @internal */
  log(call: ServerCall, code: Code, err?: unknown): void {
    const ms = performance.now() - call.startedAt;
    call.metrics.done(code, ms / 1000);
    call.span?.end(code, err instanceof Error ? err.message : undefined);
    const ids = call.span;
    const durationMs = round(ms);
    // An unexpected error may carry request data: it goes through the redacting logger.
    if (err !== undefined)
      call.redactingLog.error(
        {
          code: CODE_NAMES[code],
          durationMs,
          peer: call.peer,
          requestId: call.requestId,
          trace_id: ids?.traceId,
          span_id: ids?.spanId,
          err,
        },
        "rpc failed unexpectedly",
      );
    else
      call.rpcLog.write({
        code,
        durationMs,
        peer: call.peer,
        requestId: call.requestId,
        traceId: ids?.traceId,
        spanId: ids?.spanId,
      });
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function headerString(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function peerOf(stream: http2.ServerHttp2Stream): string {
  const session = stream.session as http2.ServerHttp2Session | undefined;
  if (!session) return "";
  let peer = peers.get(session);
  if (peer === undefined) {
    const s = session.socket;
    peer = s ? `${s.remoteAddress}:${s.remotePort}` : "";
    peers.set(session, peer);
  }
  return peer;
}

function respondHttp(stream: http2.ServerHttp2Stream, status: number, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ":status": status, "content-type": "text/plain; charset=utf-8" });
  stream.end(message);
}

/** One call in progress: its context for the handler, and its side of the HTTP/2 stream. */
class ServerCall implements HandlerContext {
  readonly metrics: ServerMethodMetrics;
  readonly span: OpenSpan | undefined;
  readonly service: string;
  readonly method: string;
  readonly deadline: number | undefined;
  readonly requestId: string;
  private controller: AbortController | undefined;
  private abortReason: unknown;
  private finished = false;
  private timer: NodeJS.Timeout | undefined;
  private extraHeaders: Record<string, string> | undefined;
  private extraTrailers: Record<string, string> | undefined;
  private trailers: Record<string, string> | undefined;
  private callLog: Logger | undefined;
  private readonly encoding: string | undefined;
  /** Unary and server-streaming calls: the one request message, read as DATA arrives. */
  private reader: MessageReader | undefined;
  private request: RawMessage | undefined;
  private requests = 0;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    private readonly headers: http2.IncomingHttpHeaders,
    private readonly entry: MethodEntry,
    readonly server: GrpcServer,
    readonly startedAt: number,
  ) {
    this.service = entry.service;
    this.method = entry.method;
    this.metrics = entry.metrics;
    entry.metrics.start();
    this.span = serverSpan(headers, entry.service, entry.method);
    this.requestId = headerString(headers["x-request-id"]) || newRequestId();
    if (this.span?.sampled) this.span.span.setAttribute("dispatch.request_id", this.requestId);
    const enc = headers["grpc-encoding"];
    this.encoding = enc === "identity" ? undefined : headerString(enc);
    const timeout = parseTimeout(headerString(headers["grpc-timeout"]));
    if (timeout !== undefined) {
      this.deadline = Date.now() + timeout;
      this.timer = setTimeout(() => this.cancel(Code.DeadlineExceeded, "deadline exceeded"), timeout);
    }
  }

  // --- HandlerContext --------------------------------------------------------------------------

  get signal(): AbortSignal {
    // Created on first use: most handlers never look, and an AbortController per call costs throughput.
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortReason !== undefined) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  get peer(): string {
    return peerOf(this.stream);
  }

  get log(): Logger {
    this.callLog ??= this.entry.log.child({ requestId: this.requestId });
    return this.callLog;
  }

  get traceSpan() {
    return this.span;
  }

  get redactingLog(): Logger {
    return this.entry.log;
  }

  get rpcLog(): RpcLog {
    return this.entry.rpcLog;
  }

  timeRemaining(): number | undefined {
    return this.deadline === undefined ? undefined : this.deadline - Date.now();
  }

  requestHeader(key: string): string | Uint8Array | undefined {
    const v = headerString(this.headers[key.toLowerCase()]);
    if (v === undefined) return undefined;
    return key.toLowerCase().endsWith("-bin") ? new Uint8Array(Buffer.from(v, "base64")) : v;
  }

  setResponseHeader(key: string, value: string): void {
    this.extraHeaders ??= {};
    this.extraHeaders[key.toLowerCase()] = value;
  }

  setResponseTrailer(key: string, value: string): void {
    this.extraTrailers ??= {};
    this.extraTrailers[key.toLowerCase()] = value;
  }

  // --- lifecycle -------------------------------------------------------------------------------

  start(): void {
    const kind = this.entry.kind;
    if (kind === "unary" || kind === "server_streaming") this.readOne();
    else this.readMany();
  }

  /** Ends the call with `code` now (deadline, shutdown), aborting the handler's signal. */
  cancel(code: Code, message: string): void {
    this.abort(new DispatchError(code, message));
    this.fail(code, message, undefined);
  }

  onClose(): void {
    if (this.timer) clearTimeout(this.timer);
    if (!this.finished) {
      // The client reset the stream or went away: the handler's work is no longer wanted.
      this.finished = true;
      this.abort(new DispatchError(Code.Canceled, "the caller cancelled the call"));
      this.server.log(this, Code.Canceled);
    }
  }

  private abort(reason: unknown): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }

  private readOne(): void {
    this.reader = new MessageReader(this.server.opts.maxReceiveMessageBytes);
    this.stream.on("data", onUnaryData);
    this.stream.on("end", onUnaryEnd);
  }

  /** @internal */
  onUnaryData(chunk: Buffer): void {
    const got = this.read(this.reader!, chunk);
    if (!got) return;
    this.requests += got.length;
    this.request = got[0] ?? this.request;
    if (this.requests > 1)
      this.fail(Code.InvalidArgument, "expected exactly one request message, got more", undefined);
  }

  /** @internal */
  onUnaryEnd(): void {
    if (this.finished) return;
    if (!this.request || this.reader!.pending) {
      this.fail(Code.InvalidArgument, "expected exactly one request message", undefined);
      return;
    }
    const request = this.decode(this.request);
    if (request === undefined) return;
    if (this.entry.kind === "unary") void this.runUnary(() => this.entry.impl!(request, this));
    else void this.runStreaming(() => this.entry.impl!(request, this));
  }

  private readMany(): void {
    const reader = new MessageReader(this.server.opts.maxReceiveMessageBytes);
    const queue = new RequestQueue(this.stream);
    this.stream.on("data", (chunk: Buffer) => {
      const got = this.read(reader, chunk);
      if (!got) {
        queue.fail(new Error("request stream failed"));
        return;
      }
      for (const raw of got) {
        const request = this.decode(raw);
        if (request === undefined) {
          queue.fail(new Error("unparseable request"));
          return;
        }
        queue.push(request);
      }
    });
    this.stream.once("end", () => queue.end());
    this.stream.once("close", () => queue.end());
    if (this.entry.kind === "client_streaming") void this.runUnary(() => this.entry.impl!(queue, this));
    else void this.runStreaming(() => this.entry.impl!(queue, this));
  }

  /** The whole messages a DATA chunk completes; undefined once the call has ended or the chunk ends it. */
  private read(reader: MessageReader, chunk: Buffer): RawMessage[] | undefined {
    if (this.finished) return undefined;
    try {
      return reader.push(chunk);
    } catch (err) {
      if (err instanceof MessageTooLargeError) this.fail(Code.ResourceExhausted, err.message, undefined);
      else this.fail(Code.Internal, "could not read the request", undefined);
      return undefined;
    }
  }

  private decode(raw: RawMessage): unknown {
    let bytes = raw.data;
    if (raw.compressed) {
      if (!this.encoding) {
        this.fail(Code.Internal, "compressed message without grpc-encoding", undefined);
        return undefined;
      }
      try {
        const max = this.server.opts.maxReceiveMessageBytes;
        bytes =
          this.encoding === "gzip"
            ? gunzipSync(bytes, { maxOutputLength: max })
            : inflateSync(bytes, { maxOutputLength: max });
      } catch (err) {
        const tooBig = (err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE";
        this.fail(
          tooBig ? Code.ResourceExhausted : Code.InvalidArgument,
          tooBig
            ? "decompressed message exceeds the size limit"
            : `request message could not be decompressed (${this.encoding})`,
          undefined,
        );
        return undefined;
      }
    }
    try {
      return fromBinary(this.entry.input, bytes);
    } catch {
      this.fail(
        Code.InvalidArgument,
        `request message could not be parsed as ${this.entry.input.typeName}`,
        undefined,
      );
      return undefined;
    }
  }

  private async runUnary(invoke: () => unknown): Promise<void> {
    let response: unknown;
    const scope = new CallScope(this);
    try {
      response = runInCall(scope, invoke);
      if (response instanceof Promise) response = await response;
    } catch (err) {
      this.failWith(err);
      return;
    } finally {
      scope.end(this.abortReason !== undefined ? this.signal : undefined);
    }
    if (this.finished) return;
    let bytes: Uint8Array;
    try {
      bytes = toBinary(this.entry.output, create(this.entry.output, response as never));
    } catch (err) {
      this.failWith(err);
      return;
    }
    if (!this.writable()) return;
    this.sendHeaders();
    this.end(OK, frame(bytes));
  }

  private async runStreaming(invoke: () => unknown): Promise<void> {
    const scope = new CallScope(this);
    try {
      const responses = runInCall(scope, invoke) as AsyncIterable<unknown>;
      for await (const response of responses) {
        if (this.finished) break;
        const bytes = toBinary(this.entry.output, create(this.entry.output, response as never));
        if (!this.writable()) break;
        this.sendHeaders();
        if (!this.stream.write(frame(bytes))) {
          await Promise.race([once(this.stream, "drain"), once(this.stream, "close")]);
        }
      }
    } catch (err) {
      this.failWith(err);
      return;
    } finally {
      scope.end(this.abortReason !== undefined ? this.signal : undefined);
    }
    if (this.finished || !this.writable()) return;
    this.sendHeaders();
    this.end(OK);
  }

  private writable(): boolean {
    return !this.stream.destroyed && !this.stream.closed;
  }

  private sendHeaders(): void {
    if (this.stream.headersSent) return;
    // Without headers of the handler's: a raw name/value list, which node takes as it is instead of
    // copying an object into a new one. It carries the date node would otherwise push onto it.
    const headers: http2.OutgoingHttpHeaders | string[] = this.extraHeaders
      ? {
          ":status": 200,
          "content-type": "application/grpc",
          "grpc-accept-encoding": SUPPORTED_ENCODINGS,
          ...this.extraHeaders,
        }
      : [
          ":status",
          "200",
          "content-type",
          "application/grpc",
          "grpc-accept-encoding",
          SUPPORTED_ENCODINGS,
          "date",
          httpDate(),
        ];
    this.stream.respond(headers as http2.OutgoingHttpHeaders, WAIT_FOR_TRAILERS);
    this.stream.on("wantTrailers", onCallWantTrailers);
  }

  /** @internal node is ready for the trailers (after the last DATA). */
  sendTrailers(): void {
    try {
      this.stream.sendTrailers(this.trailers ?? OK_TRAILERS);
    } catch {
      // the stream closed under us
    }
  }

  /** Sends the status after the response headers went out (trailers), and logs the call. */
  private end(code: Code, last?: Buffer, message?: string, details?: Uint8Array): void {
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    if (code !== OK || this.extraTrailers) {
      const t: Record<string, string> = { ...this.extraTrailers, "grpc-status": String(code) };
      if (message) t["grpc-message"] = encodeGrpcMessage(message);
      if (details) t["grpc-status-details-bin"] = Buffer.from(details).toString("base64").replace(/=+$/, "");
      this.trailers = t;
    }
    if (last) this.stream.end(last);
    else this.stream.end();
    this.server.log(this, code);
  }

  private failWith(err: unknown): void {
    const status = toWireStatus(err);
    if (status.unexpected && !this.finished) this.server.log(this, status.code, err);
    this.fail(status.code, status.message, status.details, status.unexpected);
  }

  private fail(code: Code, message: string, details: Uint8Array | undefined, logged = false): void {
    if (this.finished) return;
    if (!this.writable()) {
      this.finished = true;
      if (!logged) this.server.log(this, code);
      return;
    }
    if (this.stream.headersSent) {
      this.end(code, undefined, message, details);
      return;
    }
    // Trailers-only: the status travels in the one and only HEADERS frame.
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    const headers: http2.OutgoingHttpHeaders = {
      ":status": 200,
      "content-type": "application/grpc",
      ...this.extraHeaders,
      ...this.extraTrailers,
      "grpc-status": String(code),
      "grpc-message": encodeGrpcMessage(message),
    };
    if (details)
      headers["grpc-status-details-bin"] = Buffer.from(details).toString("base64").replace(/=+$/, "");
    this.stream.respond(headers, { endStream: true });
    if (!logged) this.server.log(this, code);
  }
}

/** Request messages of a client- or bidi-streaming call, as an async iterable with backpressure. */
class RequestQueue implements AsyncIterable<unknown> {
  private items: unknown[] = [];
  private done = false;
  private error: unknown;
  private wake: (() => void) | undefined;

  constructor(private readonly stream: http2.ServerHttp2Stream) {}

  push(item: unknown): void {
    this.items.push(item);
    if (this.items.length >= 16) this.stream.pause();
    this.notify();
  }

  end(): void {
    this.done = true;
    this.notify();
  }

  fail(err: unknown): void {
    this.error ??= err;
    this.done = true;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<unknown> {
    for (;;) {
      if (this.items.length > 0) {
        const item = this.items.shift();
        if (this.items.length < 4) this.stream.resume();
        yield item;
        continue;
      }
      if (this.error !== undefined) throw this.error;
      if (this.done) return;
      await new Promise<void>((r) => {
        this.wake = r;
      });
    }
  }
}
