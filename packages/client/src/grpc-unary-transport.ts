import http2 from "node:http2";
import { gunzipSync, inflateSync } from "node:zlib";
import {
  create,
  type DescMessage,
  type DescMethodStreaming,
  type DescMethodUnary,
  fromBinary,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextKey,
  type StreamResponse,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";
import { findTrailerError, validateResponse } from "@connectrpc/connect/protocol-grpc";
import { createGrpcTransport, type Http2SessionManager } from "@connectrpc/connect-node";
import { frame } from "@dispatch/runtime";

type HeadersInit = ConstructorParameters<typeof Headers>[0];

export const USER_AGENT = "dispatch-client/1 connect-es/2.2.0";

/**
 * Set on a unary call's context values: the response's `message` is the reply's protobuf bytes, not
 * decoded (callUndecoded in undecoded.ts). Everything else about the call is as ever.
 */
export const kUndecodedReply = createContextKey(false, { description: "leave the reply undecoded" });

/** grpc-go's default limit on a received message. */
const DEFAULT_MAX_RECEIVE_BYTES = 4 * 1024 * 1024;

export interface UnaryGrpcOptions {
  /** Largest response message accepted (after decompression); larger ones fail RESOURCE_EXHAUSTED. Default 4 MiB. */
  maxReceiveMessageBytes?: number;
}

/**
 * A connect Transport whose unary calls speak gRPC over HTTP/2 directly on the session's connection, without
 * connect-node's per-call AbortController, async-iterable pipelines and header conversions. Streaming calls
 * go to connect-node's gRPC transport on the same session.
 */
export function createUnaryGrpcTransport(
  baseUrl: string,
  session: Http2SessionManager,
  opts: UnaryGrpcOptions = {},
): Transport {
  return new UnaryGrpcTransport(baseUrl, session, opts.maxReceiveMessageBytes ?? DEFAULT_MAX_RECEIVE_BYTES);
}

class UnaryGrpcTransport implements Transport {
  private streaming: Transport | undefined;
  private readonly prefix: string;
  /** Keyed by the method's descriptor: the :path is built once per method. */
  private readonly paths = new WeakMap<object, string>();

  constructor(
    private readonly baseUrl: string,
    private readonly session: Http2SessionManager,
    private readonly maxReceiveBytes: number,
  ) {
    const url = new URL(baseUrl);
    if (url.origin !== session.authority)
      throw new Error(`cannot call ${url.origin} on an http2 session connected to ${session.authority}`);
    this.prefix = url.pathname.replace(/\/+$/, "");
  }

  unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    input: MessageInitShape<I>,
    contextValues?: ContextValues,
  ): Promise<UnaryResponse<I, O>> {
    if (signal?.aborted) return Promise.reject(ConnectError.from(signal.reason, Code.Canceled));
    if (timeoutMs !== undefined && timeoutMs <= 0) timeoutMs = undefined;
    let body: Buffer;
    let headers: http2.OutgoingHttpHeaders;
    try {
      body = frame(toBinary(method.input, create(method.input, input)));
      headers = requestHeaders(header, timeoutMs);
    } catch (err) {
      return Promise.reject(ConnectError.from(err, Code.Internal));
    }
    const call = new UnaryCall(
      method as unknown as DescMethodUnary<DescMessage, DescMessage>,
      this.session,
      signal,
      this.maxReceiveBytes,
      contextValues?.get(kUndecodedReply) === true,
    );
    if (timeoutMs !== undefined) call.timer = setTimeout(onDeadline, timeoutMs, call);
    signal?.addEventListener("abort", call);
    this.session.request("POST", this.pathOf(method), headers, {}).then(
      (stream) => call.attach(stream as CallStream, body),
      (err: unknown) => call.fail(fromNodeReason(err)),
    );
    return call.promise as unknown as Promise<UnaryResponse<I, O>>;
  }

  stream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodStreaming<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    input: AsyncIterable<MessageInitShape<I>>,
    contextValues?: ContextValues,
  ): Promise<StreamResponse<I, O>> {
    this.streaming ??= createGrpcTransport({ baseUrl: this.baseUrl, sessionManager: this.session });
    return this.streaming.stream(method, signal, timeoutMs, header, input, contextValues);
  }

  private pathOf(method: DescMethodUnary<DescMessage, DescMessage>): string {
    let p = this.paths.get(method);
    if (p === undefined) {
      p = `${this.prefix}/${method.parent.typeName}/${method.name}`;
      this.paths.set(method, p);
    }
    return p;
  }
}

const kCall = Symbol("unaryCall");
type CallStream = http2.ClientHttp2Stream & { [kCall]?: UnaryCall };

/**
 * One unary call: settles its promise exactly once, from whichever comes first (the response, a stream or
 * connection error, the deadline, the caller's signal). The stream's event handlers are shared module
 * functions that find the call on the stream; the call itself is the abort listener (handleEvent).
 */
class UnaryCall {
  readonly promise: Promise<UnaryResponse>;
  private readonly resolve: (res: UnaryResponse) => void;
  private readonly reject: (err: unknown) => void;
  settled = false;
  timer: NodeJS.Timeout | undefined;
  private stream: CallStream | undefined;
  private conn: http2.Http2Session | undefined;
  private header: Headers | undefined;
  private trailer: Headers | undefined;
  /** A status found in the response headers (a trailers-only response). */
  private headerError: ConnectError | undefined;
  private encoding: string | undefined;
  // Envelope parsing: the 5-byte prefix may arrive in pieces, a payload over several DATA frames.
  private prefixBuf: Buffer | undefined;
  private prefixLen = 0;
  private flags = 0;
  private partial: Buffer | undefined;
  private filled = 0;
  private messages = 0;
  private payload: Uint8Array | undefined;

  constructor(
    readonly method: DescMethodUnary<DescMessage, DescMessage>,
    readonly session: Http2SessionManager,
    private readonly signal: AbortSignal | undefined,
    private readonly maxBytes: number,
    private readonly undecoded = false,
  ) {
    const { promise, resolve, reject } = Promise.withResolvers<UnaryResponse>();
    this.promise = promise;
    this.resolve = resolve;
    this.reject = reject;
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    this.fail(ConnectError.from(this.signal?.reason, Code.Canceled));
  }

  attach(stream: CallStream, body: Buffer): void {
    this.stream = stream;
    this.conn = stream.session;
    stream[kCall] = this;
    stream.on("error", onError);
    if (this.settled) {
      // Cancelled or timed out while the connection was being made.
      stream.close(http2.constants.NGHTTP2_CANCEL);
      return;
    }
    try {
      stream.on("response", onResponse);
      stream.on("data", onData);
      stream.on("trailers", onTrailers);
      stream.on("end", onEnd);
      stream.on("close", onClose);
      stream.end(body);
    } catch (err) {
      this.fail(fromNodeReason(err));
    }
  }

  onHeaders(h: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader): void {
    const header = toHeaders(h);
    this.header = header;
    const status = h[":status"] ?? 0;
    try {
      this.headerError = validateResponse(status, header).headerError;
    } catch (err) {
      const e = ConnectError.from(err, Code.Internal);
      // An HTTP status error carries the headers already; a content-type error does not.
      if (status === 200) header.forEach(appendTo, e.metadata);
      this.fail(e);
      return;
    }
    const enc = h["grpc-encoding"];
    this.encoding = typeof enc === "string" && enc !== "identity" ? enc : undefined;
  }

  onTrailers(t: http2.IncomingHttpHeaders): void {
    this.trailer = toHeaders(t);
  }

  onChunk(chunk: Buffer): void {
    const n = chunk.length;
    let off = 0;
    while (off < n && !this.settled) {
      const partial = this.partial;
      if (partial !== undefined) {
        const copied = chunk.copy(partial, this.filled, off);
        this.filled += copied;
        off += copied;
        if (this.filled === partial.length) {
          this.partial = undefined;
          this.onMessage(this.flags, partial);
        }
        continue;
      }
      let flags: number;
      let len: number;
      if (this.prefixLen === 0 && n - off >= 5) {
        flags = chunk[off]!;
        len = chunk.readUInt32BE(off + 1);
        off += 5;
      } else {
        this.prefixBuf ??= Buffer.allocUnsafe(5);
        const p = this.prefixBuf;
        const copied = chunk.copy(p, this.prefixLen, off, off + 5 - this.prefixLen);
        this.prefixLen += copied;
        off += copied;
        if (this.prefixLen < 5) return;
        this.prefixLen = 0;
        flags = p[0]!;
        len = p.readUInt32BE(1);
      }
      if (this.messages > 0) {
        this.failWith(Code.Unimplemented, "protocol error: received extra output message for unary method");
        return;
      }
      if ((flags & ~1) !== 0) {
        this.failWith(Code.Internal, `protocol error: unexpected envelope flags 0x${flags.toString(16)}`);
        return;
      }
      if (len > this.maxBytes) {
        this.failWith(
          Code.ResourceExhausted,
          `received message size ${len} is larger than the limit of ${this.maxBytes} bytes`,
        );
        return;
      }
      if (n - off >= len) {
        this.onMessage(flags, chunk.subarray(off, off + len));
        off += len;
      } else {
        this.flags = flags;
        this.partial = Buffer.allocUnsafe(len);
        this.filled = chunk.copy(this.partial, 0, off);
        off = n;
      }
    }
  }

  private onMessage(flags: number, bytes: Uint8Array): void {
    this.messages++;
    if ((flags & 1) === 0) {
      this.payload = bytes;
      return;
    }
    const enc = this.encoding;
    if (enc !== "gzip" && enc !== "deflate") {
      this.failWith(
        Code.Internal,
        enc === undefined
          ? "protocol error: received a compressed message without grpc-encoding"
          : `unsupported response encoding "${enc}"`,
      );
      return;
    }
    if (bytes.length === 0) {
      this.payload = bytes;
      return;
    }
    try {
      const opts = { maxOutputLength: this.maxBytes };
      this.payload = enc === "gzip" ? gunzipSync(bytes, opts) : inflateSync(bytes, opts);
    } catch (err) {
      if ((err as { code?: unknown }).code === "ERR_BUFFER_TOO_LARGE") {
        this.failWith(
          Code.ResourceExhausted,
          `received message is larger than the limit of ${this.maxBytes} bytes after decompression`,
          err,
        );
      } else {
        this.failWith(Code.Internal, `${enc} decompression failed`, err);
      }
    }
  }

  /** The response ended: check the status and the message count, then parse the one message. */
  finish(): void {
    const header = this.header;
    if (header === undefined) {
      this.failWith(Code.Internal, "protocol error: missing response headers");
      return;
    }
    if (this.partial !== undefined || this.prefixLen > 0) {
      this.failWith(Code.Internal, "protocol error: incomplete envelope");
      return;
    }
    this.trailer ??= new Headers();
    const trailer = this.trailer;
    const trailerError = findTrailerError(trailer);
    if (trailerError !== undefined) {
      header.forEach(appendTo, trailerError.metadata);
      this.fail(trailerError);
      return;
    }
    const statusInTrailer = trailer.has("grpc-status");
    if (!statusInTrailer && !header.has("grpc-status")) {
      this.failWith(Code.Internal, "protocol error: missing status");
      return;
    }
    const payload = this.payload;
    if (payload === undefined) {
      if (this.headerError !== undefined) this.fail(this.headerError);
      else
        this.failWith(
          statusInTrailer ? Code.Unimplemented : Code.Unknown,
          "protocol error: missing output message for unary method",
        );
      return;
    }
    if (this.headerError !== undefined) {
      this.failWith(
        Code.Unknown,
        "protocol error: received output message for unary method with error status",
      );
      return;
    }
    let message: UnaryResponse["message"];
    try {
      message = this.undecoded
        ? (payload as unknown as UnaryResponse["message"])
        : fromBinary(this.method.output, payload);
    } catch (err) {
      this.failWith(Code.Internal, `parse binary: ${(err as Error).message}`, err);
      return;
    }
    this.done();
    this.resolve({
      stream: false,
      service: this.method.parent,
      method: this.method,
      header,
      trailer,
      message,
    });
  }

  /**
   * The stream closed before the response ended: reset by the server (RST_STREAM), or with its connection
   * (node reports those as CANCEL or NO_ERROR; they are UNAVAILABLE, as grpc-go has them).
   */
  reset(rst: number, cause?: unknown): void {
    const code = codeFromRst(rst);
    if (rst === http2.constants.NGHTTP2_REFUSED_STREAM || (code !== undefined && !this.conn?.destroyed))
      this.failWith(code ?? Code.Unavailable, rstMessage(rst), cause);
    else if (this.conn?.destroyed)
      this.failWith(Code.Unavailable, "http/2 connection closed before the response ended", cause);
    else this.failWith(Code.Unavailable, "http/2 stream closed before the response ended", cause);
  }

  /** A ConnectError carrying whatever response headers and trailers have arrived. */
  failWith(code: Code, message: string, cause?: unknown): void {
    if (this.settled) return;
    this.fail(new ConnectError(message, code, this.metadata(), undefined, cause));
  }

  fail(err: ConnectError): void {
    if (this.settled) return;
    this.done();
    const s = this.stream;
    if (s !== undefined && !s.closed && !(s.readableEnded && s.writableFinished))
      s.close(http2.constants.NGHTTP2_CANCEL);
    this.reject(err);
  }

  private done(): void {
    this.settled = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.signal?.removeEventListener("abort", this);
    // The handlers ignore a stream without its call. Node keeps a finished stream object alive past
    // V8's next young-generation collection; without this, the call (its request, reply, headers and
    // promise) went to the old generation with it.
    if (this.stream !== undefined) this.stream[kCall] = undefined;
  }

  private metadata(): Headers | undefined {
    if (this.header === undefined) return undefined;
    const m = new Headers(this.header);
    this.trailer?.forEach(appendTo, m);
    return m;
  }
}

// Stream event handlers, shared by every call: `this` is the stream. None of them may throw.

function onResponse(this: CallStream, h: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader): void {
  const call = this[kCall];
  if (call === undefined || call.settled) return;
  try {
    call.onHeaders(h);
  } catch (err) {
    call.fail(ConnectError.from(err, Code.Internal));
  }
}

function onData(this: CallStream, chunk: Buffer): void {
  const call = this[kCall];
  if (call === undefined || call.settled) return;
  call.session.notifyResponseByteRead(this);
  try {
    call.onChunk(chunk);
  } catch (err) {
    call.fail(ConnectError.from(err, Code.Internal));
  }
}

function onTrailers(this: CallStream, t: http2.IncomingHttpHeaders): void {
  const call = this[kCall];
  if (call === undefined || call.settled) return;
  try {
    call.onTrailers(t);
  } catch (err) {
    call.fail(ConnectError.from(err, Code.Internal));
  }
}

function onEnd(this: CallStream): void {
  const call = this[kCall];
  if (call === undefined || call.settled) return;
  try {
    // Node ends the readable side of a stream reset by the server or closed with the connection too.
    if (this.rstCode) call.reset(this.rstCode);
    else call.finish();
  } catch (err) {
    call.fail(ConnectError.from(err, Code.Internal));
  }
}

function onError(this: CallStream, err: Error): void {
  const call = this[kCall];
  if (call === undefined || call.settled) return;
  const code = (err as { code?: unknown }).code;
  // The server answered and closed before our request body went out: its answer decides.
  if (code === "ERR_STREAM_WRITE_AFTER_END" && this.writableEnded) return;
  if (code === "ERR_HTTP2_STREAM_ERROR" && this.rstCode) call.reset(this.rstCode, err);
  else call.fail(fromNodeReason(err));
}

function onClose(this: CallStream): void {
  const call = this[kCall];
  if (call === undefined || call.settled) return;
  call.reset(this.rstCode ?? 0);
}

function onDeadline(call: UnaryCall): void {
  call.timer = undefined;
  call.fail(new ConnectError("the operation timed out", Code.DeadlineExceeded));
}

const h2Names = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
];

function rstMessage(rst: number): string {
  return `http/2 stream closed with error code ${h2Names[rst] ?? rst} (0x${rst.toString(16)})`;
}

/** RST_STREAM codes as gRPC maps them (as connect-node does); NO_ERROR and STREAM_CLOSED map to nothing. */
function codeFromRst(rst: number | undefined): Code | undefined {
  const c = http2.constants;
  switch (rst) {
    case c.NGHTTP2_PROTOCOL_ERROR:
    case c.NGHTTP2_INTERNAL_ERROR:
    case c.NGHTTP2_FLOW_CONTROL_ERROR:
    case c.NGHTTP2_SETTINGS_TIMEOUT:
    case c.NGHTTP2_FRAME_SIZE_ERROR:
    case c.NGHTTP2_COMPRESSION_ERROR:
    case c.NGHTTP2_CONNECT_ERROR:
      return Code.Internal;
    case c.NGHTTP2_REFUSED_STREAM:
      return Code.Unavailable;
    case c.NGHTTP2_CANCEL:
      return Code.Canceled;
    case c.NGHTTP2_ENHANCE_YOUR_CALM:
      return Code.ResourceExhausted;
    case c.NGHTTP2_INADEQUATE_SECURITY:
    case c.NGHTTP2_HTTP_1_1_REQUIRED:
      return Code.PermissionDenied;
    default:
      return undefined;
  }
}

/**
 * Node error codes as connect-node maps them, plus unreachable networks and sessions that went away
 * (UNAVAILABLE, as grpc-go answers them).
 */
const nodeCodes = new Map<string, Code>([
  ["ERR_STREAM_WRITE_AFTER_END", Code.Aborted],
  ["ERR_STREAM_DESTROYED", Code.Aborted],
  ["ERR_HTTP2_INVALID_STREAM", Code.Aborted],
  ["ECONNRESET", Code.Aborted],
  ["ETIMEDOUT", Code.Unavailable],
  ["ENOTFOUND", Code.Unavailable],
  ["EAI_AGAIN", Code.Unavailable],
  ["ECONNREFUSED", Code.Unavailable],
  ["EHOSTUNREACH", Code.Unavailable],
  ["ENETUNREACH", Code.Unavailable],
  ["ERR_HTTP2_GOAWAY_SESSION", Code.Unavailable],
  ["ERR_HTTP2_INVALID_SESSION", Code.Unavailable],
  ["ERR_HTTP2_SESSION_ERROR", Code.Unavailable],
  ["ERR_HTTP2_STREAM_CANCEL", Code.Unavailable],
]);

/** A ConnectError for a node error, keeping the original as `cause` (neverSent() reads the chain). */
function fromNodeReason(reason: unknown): ConnectError {
  let code: Code | undefined;
  for (let e = reason, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const c = (e as { code?: unknown }).code;
    code = typeof c === "string" ? nodeCodes.get(c) : undefined;
    if (code !== undefined) break;
  }
  if (reason instanceof ConnectError) {
    if (code === undefined || code === reason.code) return reason;
    if (reason.code !== Code.Internal && reason.code !== Code.Unknown) return reason;
    return new ConnectError(reason.rawMessage, code, reason.metadata, undefined, reason);
  }
  if (reason instanceof Error)
    return new ConnectError(reason.message, code ?? Code.Internal, undefined, undefined, reason);
  return new ConnectError(String(reason), code ?? Code.Internal, undefined, undefined, reason);
}

function requestHeaders(
  header: HeadersInit | undefined,
  timeoutMs: number | undefined,
): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  if (header !== undefined) (header instanceof Headers ? header : new Headers(header)).forEach(setOn, out);
  out["content-type"] = "application/grpc+proto";
  out.te = "trailers";
  if (out["user-agent"] === undefined) out["user-agent"] = USER_AGENT;
  if (timeoutMs !== undefined) out["grpc-timeout"] = grpcTimeout(timeoutMs);
  return out;
}

/** The grpc-timeout value: at most 8 digits. */
function grpcTimeout(ms: number): string {
  if (ms < 1e8) return `${Math.ceil(ms)}m`;
  return `${Math.min(99_999_999, Math.ceil(ms / 1000))}S`;
}

function setOn(this: http2.OutgoingHttpHeaders, value: string, key: string): void {
  this[key] = value;
}

function appendTo(this: Headers, value: string, key: string): void {
  this.append(key, value);
}

/** Response headers or trailers as WHATWG Headers, without HTTP/2 pseudo-headers. */
function toHeaders(h: http2.IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const k in h) {
    if (k.charCodeAt(0) === 58 /* ":" */) continue;
    const v = h[k];
    if (typeof v === "string") out.append(k, v);
    else if (Array.isArray(v)) for (const x of v) out.append(k, x);
  }
  return out;
}
