import http2 from "node:http2";

export interface RawResponse {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
  /** grpc-status from trailers, or from headers for a trailers-only response. */
  grpcStatus: number | undefined;
  grpcMessage: string | undefined;
}

/** Sends exactly the bytes and headers given, to test what well-behaved clients never send. */
export async function rawCall(
  port: number,
  path: string,
  body: Buffer,
  headers: http2.OutgoingHttpHeaders = {},
): Promise<RawResponse> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  try {
    return await new Promise<RawResponse>((resolve, reject) => {
      const req = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
        ...headers,
      });
      let resHeaders: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      req.on("response", (h) => {
        resHeaders = h;
      });
      req.on("trailers", (t) => {
        trailers = t;
      });
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("error", reject);
      req.on("end", () => {
        const source = trailers["grpc-status"] !== undefined ? trailers : resHeaders;
        const s = source["grpc-status"];
        const m = source["grpc-message"];
        resolve({
          status: Number(resHeaders[":status"]),
          headers: resHeaders,
          trailers,
          body: Buffer.concat(chunks),
          grpcStatus: s === undefined ? undefined : Number(s),
          grpcMessage: typeof m === "string" ? decodeURIComponent(m) : undefined,
        });
      });
      // Node ends GET requests at once; everything else carries the body.
      if (headers[":method"] === "GET") return;
      req.end(body);
    });
  } finally {
    session.close();
  }
}

/** A length-prefixed gRPC message. */
export function grpcFrame(payload: Uint8Array, compressed = false): Buffer {
  const b = Buffer.alloc(5 + payload.length);
  b[0] = compressed ? 1 : 0;
  b.writeUInt32BE(payload.length, 1);
  Buffer.from(payload).copy(b, 5);
  return b;
}
