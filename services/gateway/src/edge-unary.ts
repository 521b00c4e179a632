import type http from "node:http";
import type http2 from "node:http2";
import { gzipSync } from "node:zlib";
import {
  create,
  type DescMethodUnary,
  fromBinary,
  fromJsonString,
  type Message,
  toBinary,
  toJsonString,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextValues,
  type HandlerContext,
  type ServiceImpl,
} from "@connectrpc/connect";
import { mergeNonProtocolHeaders } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { AppService } from "@dispatch/gen/dispatch/app/v1/app_pb.ts";
import { CallScope, frame, MessageReader, MessageTooLargeError, runInCall } from "@dispatch/runtime";
import { kUser } from "./app-rpc.ts";
import { type EdgeCalls, header, type ObservedCall, timeoutOf } from "./edge-calls.ts";
import { wireJson } from "./wire-json.ts";
import { kWireReplies, WireReply } from "./wire-mapping.ts";

type Method = DescMethodUnary;
type Impl = (request: Message, ctx: HandlerContext) => Promise<unknown>;
/** Bodies at least this large are compressed when the client accepts gzip (connect-node's default). */
const COMPRESS_MIN_BYTES = 1024;

/**
 * The public port's hot path: unary calls of dispatch.app.v1 as plain gRPC over h2c, and as Connect
 * unary POSTs (JSON or binary) over HTTP/1.1, served on node's own objects. Everything these paths do
 * not take (streaming methods, gRPC-Web, Connect GET, compressed requests, Connect over h2) goes to
 * connect-node, which costs several times more CPU per call (an AbortController, a DOMException and
 * async-iterator pipelines per call). The wire format is connect-node's: its own helpers write the
 * error bodies and status trailers.
 */
export class EdgeUnary {
  private readonly routes = new Map<string, { method: Method; impl: Impl }>();

  constructor(
    impl: ServiceImpl<typeof AppService>,
    private readonly calls: EdgeCalls,
    private readonly maxBodyBytes: number,
  ) {
    const byName = impl as unknown as Record<string, Impl | undefined>;
    for (const m of AppService.methods) {
      const fn = byName[m.localName];
      if (m.methodKind !== "unary" || !fn) continue;
      this.routes.set(`/${AppService.typeName}/${m.name}`, { method: m as Method, impl: fn.bind(impl) });
    }
  }

  /** Serves an h2 stream that is a plain gRPC unary call; false leaves the stream untouched. */
  grpc(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): boolean {
    if (headers[":method"] !== "POST") return false;
    const route = this.routes.get(headers[":path"] ?? "");
    const type = headers["content-type"];
    if (!route || (type !== "application/grpc" && type !== "application/grpc+proto")) return false;
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    const timeoutMs = timeoutOf(headers);
    if (Number.isNaN(timeoutMs)) return false;

    stream.on("error", ignore);
    const ip = stream.session?.socket?.remoteAddress ?? "";
    const call = this.calls.begin(route.method, headers, ip, "grpc", timeoutMs);
    const reply = new GrpcReply(stream, call, acceptsGzip(headers["grpc-accept-encoding"]));
    const reader = new MessageReader(this.maxBodyBytes);
    let request: Uint8Array | undefined;
    let count = 0;
    const onData = (chunk: Buffer) => {
      if (call.done) return;
      try {
        for (const m of reader.push(chunk)) {
          count++;
          request = m.compressed ? undefined : m.data;
        }
      } catch (err) {
        reply.error(
          err instanceof MessageTooLargeError
            ? new ConnectError(`request ${err.message}`, Code.ResourceExhausted)
            : new ConnectError("could not read the request", Code.Internal),
        );
      }
    };
    stream.on("data", onData);
    const onEnd = () => {
      if (call.done) return;
      if (count !== 1 || reader.pending) {
        reply.error(new ConnectError("expected exactly one request message", Code.InvalidArgument));
      } else if (!request) {
        reply.error(new ConnectError("compressed message without grpc-encoding", Code.Internal));
      } else void this.run(route, request, false, call, headers, ip, "grpc", reply);
    };
    stream.once("end", onEnd);
    stream.once("close", () => {
      // Node keeps a closed stream object alive past V8's next young-generation collection; its
      // listeners would take this call's objects (the reply, the request, the headers) to the old
      // generation with it.
      stream.off("data", onData);
      stream.off("end", onEnd);
      reply.closed();
    });
    return true;
  }

  /** Serves an HTTP/1.1 request that is a plain Connect unary POST; false leaves it untouched. */
  connect(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (req.method !== "POST") return false;
    const route = this.routes.get(req.url ?? "");
    const type = req.headers["content-type"];
    const json = type === "application/json" || type === "application/json; charset=utf-8";
    if (!route || !(json || type === "application/proto")) return false;
    const encoding = req.headers["content-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    const version = req.headers["connect-protocol-version"];
    if (version !== undefined && version !== "1") return false;
    const timeoutMs = timeoutOf(req.headers);
    if (Number.isNaN(timeoutMs)) return false;

    const ip = req.socket.remoteAddress ?? "";
    const call = this.calls.begin(route.method, req.headers, ip, "connect", timeoutMs);
    const reply = new ConnectReply(res, call, json, acceptsGzip(req.headers["accept-encoding"]));
    res.once("close", () => reply.closed());
    const max = this.maxBodyBytes;
    const tooLarge = (n: number) =>
      reply.error(
        new ConnectError(
          `request body of ${n} bytes is larger than the limit of ${max} bytes`,
          Code.ResourceExhausted,
        ),
        true,
      );
    const declared = Number(req.headers["content-length"]);
    if (declared > max) {
      tooLarge(declared);
      return true;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      if (call.done) return;
      size += chunk.length;
      if (size > max) tooLarge(size);
      else chunks.push(chunk);
    });
    req.once("end", () => {
      if (call.done) return;
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      void this.run(route, body, json, call, req.headers, ip, "connect", reply);
    });
    return true;
  }

  /** Decodes, admits (limits, token), runs the implementation in the call's context, and replies. */
  private async run(
    route: { method: Method; impl: Impl },
    body: Uint8Array,
    json: boolean,
    call: ObservedCall,
    headers: http.IncomingHttpHeaders,
    ip: string,
    protocol: string,
    reply: Reply,
  ): Promise<void> {
    const { method } = route;
    let request: Message;
    try {
      request = json
        ? fromJsonString(method.input, Buffer.from(body.buffer, body.byteOffset, body.length).toString(), {
            ignoreUnknownFields: true,
          })
        : fromBinary(method.input, body);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      reply.error(
        new ConnectError(`request is not a valid ${method.input.typeName}: ${why}`, Code.InvalidArgument),
      );
      return;
    }
    try {
      const user = await this.calls.admit(method.name, header(headers, "authorization") ?? null, ip);
      if (call.done) return;
      // The reply may come as bytes already (wire-mapping.ts).
      const values = createContextValues().set(kUser, user).set(kWireReplies, true);
      const ctx = new EdgeContext(method, protocol, headers, call, values);
      reply.context = ctx;
      const scope = new CallScope(ctx);
      let output: unknown;
      try {
        output = await runInCall(scope, () => route.impl(request, ctx));
      } finally {
        scope.end(ctx.signal);
      }
      if (call.done) return;
      reply.ok(method, output instanceof WireReply ? output : create(method.output, output as never));
    } catch (err) {
      reply.error(this.calls.toConnectError(err, method.name));
    }
  }
}

/** The handler's view of a call on the lean path (connect's HandlerContext); runInCall gets a CallScope of it. */
class EdgeContext implements HandlerContext {
  readonly service = AppService;
  readonly requestMethod = "POST";
  readonly deadline: number | undefined;
  readonly requestId: string;
  private readonly controller = new AbortController();
  private reqHeader: Headers | undefined;
  private resHeader: Headers | undefined;
  private resTrailer: Headers | undefined;

  constructor(
    readonly method: Method,
    readonly protocolName: string,
    private readonly headers: http.IncomingHttpHeaders,
    private readonly call: ObservedCall,
    readonly values: ContextValues,
  ) {
    this.deadline = call.deadline;
    this.requestId = call.requestId;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get traceSpan() {
    return this.call.traceSpan;
  }

  get url(): string {
    return `${this.headers.host ?? this.headers[":authority"] ?? ""}/${AppService.typeName}/${this.method.name}`;
  }

  readonly timeoutMs = (): number | undefined =>
    this.deadline === undefined ? undefined : this.deadline - Date.now();

  get requestHeader(): Headers {
    if (!this.reqHeader) {
      this.reqHeader = new Headers();
      for (const [k, v] of Object.entries(this.headers)) {
        if (k.startsWith(":") || v === undefined) continue;
        for (const one of Array.isArray(v) ? v : [v]) this.reqHeader.append(k, one);
      }
    }
    return this.reqHeader;
  }

  get responseHeader(): Headers {
    this.resHeader ??= new Headers();
    return this.resHeader;
  }

  get responseTrailer(): Headers {
    this.resTrailer ??= new Headers();
    return this.resTrailer;
  }

  /** What the handler added to the response headers and trailers, if anything. */
  added(): { header: Headers | undefined; trailer: Headers | undefined } {
    return { header: this.resHeader, trailer: this.resTrailer };
  }

  abort(reason: ConnectError): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }
}

/**
 * What both reply kinds share: the call's deadline (running from the first byte, while the request is
 * read and admitted too), the handler's context once there is one, and the end of the call.
 */
abstract class Reply {
  protected ctx: EdgeContext | undefined;
  private readonly expiry: NodeJS.Timeout | undefined;

  constructor(protected readonly call: ObservedCall) {
    if (call.deadline !== undefined) {
      this.expiry = setTimeout(
        () => this.error(new ConnectError("the operation timed out", Code.DeadlineExceeded)),
        Math.max(0, call.deadline - Date.now()),
      );
    }
  }

  set context(ctx: EdgeContext) {
    this.ctx = ctx;
  }

  abstract ok(method: Method, message: Message | WireReply): void;
  abstract error(err: ConnectError): void;

  /** The connection or stream closed: if the call has not been answered, the client cancelled it. */
  closed(): void {
    if (this.call.done) return;
    this.ctx?.abort(new ConnectError("the caller cancelled the call", Code.Canceled));
    this.finish(Code.Canceled);
  }

  protected finish(code: Code | 0): void {
    if (this.expiry) clearTimeout(this.expiry);
    this.call.end(code);
  }
}

/** The gRPC side of a lean call: one message and trailers, or a trailers-only error. */
class GrpcReply extends Reply {
  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    call: ObservedCall,
    private readonly gzip: boolean,
  ) {
    super(call);
  }

  ok(method: Method, message: Message | WireReply): void {
    let bytes: Uint8Array;
    try {
      bytes = message instanceof WireReply ? message.bytes : toBinary(method.output, message);
    } catch (err) {
      this.error(new ConnectError(`could not serialize the response: ${String(err)}`, Code.Internal));
      return;
    }
    if (!this.writable()) {
      this.finish(Code.Canceled);
      return;
    }
    const compress = this.gzip && bytes.length >= COMPRESS_MIN_BYTES;
    const payload = compress ? gzipSync(bytes) : bytes;
    const framed = frame(payload, compress);
    const added = this.ctx?.added();
    const head: http2.OutgoingHttpHeaders = {
      ":status": 200,
      "content-type": "application/grpc",
      "x-request-id": this.call.requestId,
    };
    if (compress) head["grpc-encoding"] = "gzip";
    if (added?.header) for (const [k, v] of added.header) head[k] = v;
    const trailers: http2.OutgoingHttpHeaders = { "grpc-status": "0" };
    if (added?.trailer) for (const [k, v] of added.trailer) trailers[k] = v;
    this.stream.respond(head, { waitForTrailers: true });
    this.stream.once("wantTrailers", () => {
      try {
        this.stream.sendTrailers(trailers);
      } catch {
        // the stream closed under us
      }
    });
    this.stream.end(framed);
    this.finish(0);
  }

  error(err: ConnectError): void {
    if (this.call.done) return;
    if (this.writable() && !this.stream.headersSent) {
      const h = new Headers({ "x-request-id": this.call.requestId });
      const added = this.ctx?.added();
      if (added?.header) for (const [k, v] of added.header) h.set(k, v);
      if (added?.trailer) for (const [k, v] of added.trailer) h.set(k, v);
      setTrailerStatus(h, err);
      const head: http2.OutgoingHttpHeaders = { ":status": 200, "content-type": "application/grpc" };
      for (const [k, v] of h) head[k] = v;
      this.stream.respond(head, { endStream: true });
    }
    this.ctx?.abort(err);
    this.finish(err.code);
  }

  private writable(): boolean {
    return !this.stream.destroyed && !this.stream.closed;
  }
}

/** The Connect side of a lean call over HTTP/1.1: the message, or an error as Connect's JSON body. */
class ConnectReply extends Reply {
  constructor(
    private readonly res: http.ServerResponse,
    call: ObservedCall,
    private readonly json: boolean,
    private readonly gzip: boolean,
  ) {
    super(call);
  }

  ok(method: Method, message: Message | WireReply): void {
    let body: Uint8Array;
    try {
      if (message instanceof WireReply) body = this.json ? wireReplyJson(method, message) : message.bytes;
      else
        body = this.json
          ? Buffer.from(toJsonString(method.output, message))
          : toBinary(method.output, message);
    } catch (err) {
      this.error(new ConnectError(`could not serialize the response: ${String(err)}`, Code.Internal));
      return;
    }
    const h = new Headers({ "content-type": this.json ? "application/json" : "application/proto" });
    this.send(200, h, body, false);
    this.finish(0);
  }

  /** `close`: the request body was not read to its end, so the connection cannot be reused. */
  error(err: ConnectError, close = false): void {
    if (this.call.done) return;
    const h = new Headers({ "content-type": "application/json" });
    // As connect-node: an error relayed from downstream keeps its details but not its metadata.
    if (!err.isWireError) mergeNonProtocolHeaders(h, err.metadata);
    this.send(codeToHttpStatus(err.code), h, errorToJsonBytes(err, {}), close);
    this.ctx?.abort(err);
    this.finish(err.code);
  }

  private send(status: number, h: Headers, body: Uint8Array, close: boolean): void {
    if (this.res.headersSent || this.res.destroyed) return;
    const added = this.ctx?.added();
    if (added?.header) for (const [k, v] of added.header) h.set(k, v);
    // Connect unary sends trailers as headers prefixed "trailer-".
    if (added?.trailer) for (const [k, v] of added.trailer) h.set(`trailer-${k}`, v);
    h.set("x-request-id", this.call.requestId);
    let payload = body;
    if (this.gzip && body.length >= COMPRESS_MIN_BYTES) {
      payload = gzipSync(body);
      h.set("content-encoding", "gzip");
    }
    h.set("content-length", String(payload.length));
    if (close) h.set("connection", "close");
    for (const [k, v] of h) this.res.setHeader(k, v);
    this.res.writeHead(status);
    this.res.end(payload);
  }
}

/**
 * A WireReply as JSON: written from its bytes (wire-json.ts), or where those are not canonical, from the
 * message they decode to (a decode error is then the call's error, as it was before).
 */
function wireReplyJson(method: Method, reply: WireReply): Uint8Array {
  return (
    wireJson(method.output)?.(reply.bytes) ??
    Buffer.from(toJsonString(method.output, fromBinary(method.output, reply.bytes)))
  );
}

/** A stream's error listener: errors end the call through its close; one shared function, holding nothing. */
function ignore(): void {}

/** True when an accept-encoding list names gzip (with a non-zero weight). */
function acceptsGzip(value: string | string[] | undefined): boolean {
  if (value === undefined) return false;
  for (const part of (Array.isArray(value) ? value.join(",") : value).split(",")) {
    const [name, ...params] = part.trim().split(";");
    if (name?.trim().toLowerCase() !== "gzip") continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    return q === undefined || Number(q.slice(2)) > 0;
  }
  return false;
}
