import { randomUUID } from "node:crypto";
import { once } from "node:events";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { gunzipSync, gzipSync } from "node:zlib";
import { create, fromBinary, toBinary, toJson, toJsonString } from "@bufbuild/protobuf";
import {
  ListActiveOrdersResponseSchema,
  ListRestaurantsRequestSchema,
  ListRestaurantsResponseSchema,
} from "@dispatch/gen/dispatch/app/v1/app_pb.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Gateway, startGateway } from "../src/main.ts";
import { startStack, WEBHOOK_SECRET } from "./stack.ts";

// The public port's own wire handling: plain gRPC over h2c and Connect unary over HTTP/1.1 are served
// by the gateway's lean path (src/edge-unary.ts); what it does not take goes to connect-node.

let stack: Awaited<ReturnType<typeof startStack>>;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  stack = await startStack();
}, 120_000);

afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
  await stack?.stop();
});

const path = (method: string) => `/dispatch.app.v1.AppService/${method}`;

function envelope(payload: Uint8Array, flag = 0): Buffer {
  const b = Buffer.alloc(5 + payload.length);
  b[0] = flag;
  b.writeUInt32BE(payload.length, 1);
  b.set(payload, 5);
  return b;
}

interface GrpcResult {
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  data: Buffer;
  /** The status, from the trailers or (trailers-only) the headers. */
  status: string | undefined;
  message: string | undefined;
}

/** One request over h2c: its response headers, trailers and body. */
async function h2(
  port: number,
  headers: http2.OutgoingHttpHeaders,
  body: Buffer | string,
): Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; data: Buffer }> {
  const client = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const req = client.request(headers);
    let trailers: http2.IncomingHttpHeaders = {};
    req.on("trailers", (t) => {
      trailers = t;
    });
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    // A trailers-only answer can end the stream in the same tick as its headers arrive.
    const response = once(req, "response");
    const ended = once(req, "end");
    req.end(body);
    const [resHeaders] = (await response) as [http2.IncomingHttpHeaders];
    await ended;
    return { headers: resHeaders, trailers, data: Buffer.concat(chunks) };
  } finally {
    client.close();
  }
}

/** One raw gRPC call over h2c: exactly the bytes given, nothing added but the usual headers. */
async function grpc(
  port: number,
  method: string,
  body: Buffer,
  headers: http2.OutgoingHttpHeaders = {},
): Promise<GrpcResult> {
  const r = await h2(
    port,
    {
      ":method": "POST",
      ":path": path(method),
      "content-type": "application/grpc",
      te: "trailers",
      ...headers,
    },
    body,
  );
  const status = (r.trailers["grpc-status"] ?? r.headers["grpc-status"]) as string | undefined;
  const message = (r.trailers["grpc-message"] ?? r.headers["grpc-message"]) as string | undefined;
  return { ...r, status, message };
}

/** One raw HTTP/1.1 POST. */
function post(
  port: number,
  method: string,
  body: Buffer | string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, method: "POST", path: path(method), headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** One Connect unary POST over h2c: connect-node's path, which the lean one leaves Connect on HTTP/2 to. */
async function connectOverH2(
  port: number,
  method: string,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: Buffer }> {
  const r = await h2(port, { ":method": "POST", ":path": path(method), ...headers }, body);
  return { status: Number(r.headers[":status"]), body: r.data };
}

const restaurants = (pageSize: number) =>
  Buffer.from(toBinary(ListRestaurantsRequestSchema, create(ListRestaurantsRequestSchema, { pageSize })));

async function signUp(): Promise<string> {
  const r = await post(
    stack.gateway.port,
    "SignUp",
    JSON.stringify({ email: `wire-${randomUUID()}@example.com`, password: "a long enough password" }),
    { "content-type": "application/json" },
  );
  return (JSON.parse(r.body.toString()) as { session: { accessToken: string } }).session.accessToken;
}

/** A gateway whose orders service accepts connections and never answers. */
async function gatewayWithSilentOrders(): Promise<Gateway> {
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
  });
  silent.listen(0, "127.0.0.1");
  await once(silent, "listening");
  const g = await startGateway({
    PORT: "0",
    INTERNAL_PORT: "0",
    ADMIN_PORT: "0",
    LOG_LEVEL: "silent",
    WEBHOOK_SECRET,
    ...stack.downstream,
    ORDERS_URL: `127.0.0.1:${(silent.address() as net.AddressInfo).port}`,
  });
  cleanup.push(async () => {
    await g.shutdown();
    for (const s of sockets) s.destroy();
    silent.close();
  });
  return g;
}

describe("gRPC on the public port", () => {
  it("answers a unary call with one message, the status in trailers and the request id echoed", async () => {
    const requestId = randomUUID();
    const r = await grpc(stack.gateway.port, "ListRestaurants", envelope(restaurants(2)), {
      "x-request-id": requestId,
    });
    expect(r.headers[":status"]).toBe(200);
    expect(r.headers["content-type"]).toBe("application/grpc");
    expect(r.headers["x-request-id"]).toBe(requestId);
    expect(r.trailers["grpc-status"]).toBe("0");
    expect(r.data[0]).toBe(0);
    expect(r.data.readUInt32BE(1)).toBe(r.data.length - 5);
    const res = fromBinary(ListRestaurantsResponseSchema, r.data.subarray(5));
    expect(res.restaurants).toHaveLength(2);
    expect(res.restaurants[0]!.name).toBeTruthy();
  });

  it("compresses a large reply only for a client that accepts gzip", async () => {
    const plain = await grpc(stack.gateway.port, "ListRestaurants", envelope(restaurants(20)));
    expect(plain.data[0]).toBe(0);
    expect(plain.headers["grpc-encoding"]).toBeUndefined();
    const body = plain.data.subarray(5);
    expect(body.length).toBeGreaterThanOrEqual(1024);

    const zipped = await grpc(stack.gateway.port, "ListRestaurants", envelope(restaurants(20)), {
      "grpc-accept-encoding": "identity,gzip",
    });
    expect(zipped.data[0]).toBe(1);
    expect(zipped.headers["grpc-encoding"]).toBe("gzip");
    const unzipped = gunzipSync(zipped.data.subarray(5));
    expect(unzipped.length).toBeLessThanOrEqual(body.length + 16);
    expect(fromBinary(ListRestaurantsResponseSchema, unzipped).restaurants).toHaveLength(
      fromBinary(ListRestaurantsResponseSchema, body).restaurants.length,
    );
  });

  it("refuses bad requests with a status naming what is wrong, never a crash", async () => {
    const port = stack.gateway.port;
    const noToken = await grpc(port, "ListActiveOrders", envelope(new Uint8Array()));
    expect(noToken.status).toBe("16"); // UNAUTHENTICATED
    expect(noToken.headers["x-request-id"]).toBeTruthy();

    const garbage = await grpc(port, "ListRestaurants", envelope(Buffer.from([0xff, 0xff, 0xff])));
    expect(garbage.status).toBe("3"); // INVALID_ARGUMENT
    expect(decodeURIComponent(garbage.message ?? "")).toContain("dispatch.app.v1.ListRestaurantsRequest");

    const two = await grpc(
      port,
      "ListRestaurants",
      Buffer.concat([envelope(restaurants(1)), envelope(restaurants(1))]),
    );
    expect(two.status).toBe("3");

    const huge = Buffer.alloc(5);
    huge.writeUInt32BE(50 * 1024 * 1024, 1);
    const tooLarge = await grpc(port, "ListRestaurants", huge);
    expect(tooLarge.status).toBe("8"); // RESOURCE_EXHAUSTED

    const truncated = await grpc(port, "ListRestaurants", envelope(restaurants(1)).subarray(0, 4));
    expect(truncated.status).toBe("3");

    // The gateway still serves after all of that.
    expect((await grpc(port, "ListRestaurants", envelope(restaurants(1)))).status).toBe("0");
  });

  it("still serves what the lean path leaves to connect-node: a gzip-compressed request", async () => {
    const r = await grpc(stack.gateway.port, "ListRestaurants", envelope(gzipSync(restaurants(3)), 1), {
      "grpc-encoding": "gzip",
    });
    expect(r.status).toBe("0");
    expect(fromBinary(ListRestaurantsResponseSchema, r.data.subarray(5)).restaurants).toHaveLength(3);
  });

  it("lists active orders mapped on the wire, as Connect JSON and binary list them decoded", async () => {
    const token = await signUp();
    const json = { "content-type": "application/json", authorization: `Bearer ${token}` };
    const call = async (method: string, body: unknown) =>
      JSON.parse((await post(stack.gateway.port, method, JSON.stringify(body), json)).body.toString());
    const { restaurants: list } = await call("ListRestaurants", { pageSize: 5 });
    const restaurant = (list as { id: string; name: string; open: boolean }[]).find((r) => r.open)!;
    const { items } = await call("GetMenu", { restaurantId: restaurant.id });
    const [a, b] = (items as { id: string; available: boolean }[]).filter((i) => i.available);
    const placed: string[] = [];
    for (const lines of [
      [{ menuItemId: a!.id, quantity: 2 }],
      [
        { menuItemId: a!.id, quantity: 1 },
        { menuItemId: b!.id, quantity: 3 },
      ],
    ]) {
      const r = await call("PlaceOrder", {
        requestId: `wire-${randomUUID()}`,
        restaurantId: restaurant.id,
        items: lines,
        deliveryAddress: { line1: "Torstrasse 1", city: "Berlin", countryCode: "DE" },
        note: "internal only",
      });
      placed.push(r.order.id);
    }

    const r = await grpc(stack.gateway.port, "ListActiveOrders", envelope(new Uint8Array()), {
      authorization: `Bearer ${token}`,
    });
    expect(r.status).toBe("0");
    const payload = r.data.subarray(5);
    expect(r.data.readUInt32BE(1)).toBe(payload.length);
    const viaGrpc = fromBinary(ListActiveOrdersResponseSchema, payload);
    expect(viaGrpc.orders.map((o) => o.id).sort()).toEqual([...placed].sort());
    const second = viaGrpc.orders.find((o) => o.id === placed[1])!;
    expect(second.restaurantName).toBe(restaurant.name);
    expect(second.items.map((i) => i.quantity)).toEqual([1, 3]);
    expect(second.deliveryAddress?.line1).toBe("Torstrasse 1");
    expect(second.createTime).toBeDefined();
    expect(viaGrpc.orders[0]!.$unknown).toBeUndefined(); // user_id, note: internal fields left out

    // Connect binary and JSON on HTTP/1.1 take the same lean path (JSON written from the mapped bytes);
    // Connect JSON over h2c goes to connect-node, which decodes orders' reply and maps it (mapping.ts).
    const viaBinary = await post(stack.gateway.port, "ListActiveOrders", Buffer.alloc(0), {
      ...json,
      "content-type": "application/proto",
    });
    expect(viaBinary.status).toBe(200);
    expect(viaBinary.body).toEqual(payload);
    const expected = toJson(ListActiveOrdersResponseSchema, viaGrpc);
    const viaJson = await post(stack.gateway.port, "ListActiveOrders", "{}", json);
    // Written from the mapped bytes (wire-json.ts): the text protobuf-es writes from the decoded reply.
    expect(viaJson.body.toString()).toBe(toJsonString(ListActiveOrdersResponseSchema, viaGrpc));
    const decodedPath = await connectOverH2(stack.gateway.port, "ListActiveOrders", "{}", json);
    expect(decodedPath.status).toBe(200);
    expect(JSON.parse(decodedPath.body.toString())).toEqual(expected);
  });

  it("ends a call at the caller's deadline with DEADLINE_EXCEEDED", async () => {
    const token = await signUp();
    const g = await gatewayWithSilentOrders();
    const started = Date.now();
    const r = await grpc(g.port, "ListActiveOrders", envelope(new Uint8Array()), {
      authorization: `Bearer ${token}`,
      "grpc-timeout": "300m",
    });
    expect(r.status).toBe("4");
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describe("Connect over HTTP/1.1 on the public port", () => {
  it("takes JSON (ignoring unknown fields) and binary bodies alike", async () => {
    const json = await post(
      stack.gateway.port,
      "ListRestaurants",
      JSON.stringify({ pageSize: 2, notAField: 1 }),
      {
        "content-type": "application/json",
      },
    );
    expect(json.status).toBe(200);
    expect(json.headers["content-type"]).toBe("application/json");
    expect((JSON.parse(json.body.toString()) as { restaurants: unknown[] }).restaurants).toHaveLength(2);

    const bin = await post(stack.gateway.port, "ListRestaurants", restaurants(2), {
      "content-type": "application/proto",
    });
    expect(bin.status).toBe(200);
    expect(bin.headers["content-type"]).toBe("application/proto");
    expect(fromBinary(ListRestaurantsResponseSchema, bin.body).restaurants).toHaveLength(2);
  });

  it("answers a malformed body with 400 invalid_argument naming the message type", async () => {
    const r = await post(stack.gateway.port, "ListRestaurants", "{not json", {
      "content-type": "application/json",
    });
    expect(r.status).toBe(400);
    const err = JSON.parse(r.body.toString()) as { code: string; message: string };
    expect(err.code).toBe("invalid_argument");
    expect(err.message).toContain("dispatch.app.v1.ListRestaurantsRequest");
    expect(r.headers["x-request-id"]).toBeTruthy();
  });

  it("gzips a large reply for a client that accepts it", async () => {
    const r = await post(stack.gateway.port, "ListRestaurants", JSON.stringify({ pageSize: 20 }), {
      "content-type": "application/json",
      "accept-encoding": "gzip, deflate, br",
    });
    expect(r.status).toBe(200);
    expect(r.headers["content-encoding"]).toBe("gzip");
    expect(Number(r.headers["content-length"])).toBe(r.body.length);
    const res = JSON.parse(gunzipSync(r.body).toString()) as { restaurants: unknown[] };
    expect(res.restaurants.length).toBeGreaterThan(2);
  });

  it("still serves a gzip-compressed request body (through connect-node)", async () => {
    const r = await post(stack.gateway.port, "ListRestaurants", gzipSync(JSON.stringify({ pageSize: 1 })), {
      "content-type": "application/json",
      "content-encoding": "gzip",
    });
    expect(r.status).toBe(200);
    expect((JSON.parse(r.body.toString()) as { restaurants: unknown[] }).restaurants).toHaveLength(1);
  });

  it("ends a call at connect-timeout-ms with 504 deadline_exceeded", async () => {
    const token = await signUp();
    const g = await gatewayWithSilentOrders();
    const r = await post(g.port, "ListActiveOrders", "{}", {
      "content-type": "application/json",
      authorization: `Bearer ${token}`,
      "connect-timeout-ms": "300",
    });
    expect(r.status).toBe(504);
    expect((JSON.parse(r.body.toString()) as { code: string }).code).toBe("deadline_exceeded");
  });
});
