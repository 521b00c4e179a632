/**
 * Open-loop load for PlaceOrder, which h2load cannot drive: h2load sends one body over and over, and a
 * repeated request_id is (by design) the idempotent replay of one order, not a new one. This sends gRPC
 * over h2c to the gateway at a fixed rate, each call with its own request_id, decodes every reply and
 * checks it (status OK, a new order id, the lines and total the catalog's prices give). Latency runs from
 * the scheduled send time, so a stalled server cannot hide queueing (no coordinated omission).
 *
 * Run as its own process: `tsx bench/driver.ts '<json options>'`; prints one JSON result line.
 */
import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type Order,
  PlaceOrderRequestSchema,
  PlaceOrderResponseSchema,
} from "../gen/dispatch/app/v1/app_pb.ts";
import { grpcBody, quantile } from "./h2load.ts";

export interface DriverOptions {
  url: string;
  token: string;
  rps: number;
  durationS: number;
  warmupS: number;
  connections: number;
  restaurantId: string;
  items: { menuItemId: string; quantity: number }[];
  /** total (minor units) the reply must carry */
  expectTotalMinor: number;
}

export interface DriverResult {
  rps: number;
  sent: number;
  ok: number;
  errors: number;
  errorSample: string[];
  achievedRps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

function totalMinor(o: Order | undefined): number {
  const t = o?.total;
  return t ? Number(t.amountMinor) : Number.NaN;
}

export async function drive(o: DriverOptions): Promise<DriverResult> {
  const sessions = Array.from({ length: o.connections }, () => http2.connect(o.url));
  await Promise.all(sessions.map((s) => new Promise((r, j) => s.once("connect", r).once("error", j))));
  const runId = Math.random().toString(36).slice(2, 10);
  const latencies: number[] = [];
  const errorSample: string[] = [];
  const seen = new Set<string>();
  let sent = 0;
  let measuredSent = 0;
  let ok = 0;
  let errors = 0;
  let inFlight = 0;
  const fail = (why: string, measured: boolean) => {
    if (measured) errors++;
    if (errorSample.length < 5) errorSample.push(why);
  };
  const call = (n: number, scheduled: number, measured: boolean) => {
    const body = grpcBody(
      toBinary(
        PlaceOrderRequestSchema,
        create(PlaceOrderRequestSchema, {
          requestId: `bench-${runId}-${n}`,
          restaurantId: o.restaurantId,
          items: o.items,
          deliveryAddress: { line1: "Torstrasse 1", city: "Berlin", postalCode: "10119", countryCode: "DE" },
        }),
      ),
    );
    inFlight++;
    const stream = sessions[n % sessions.length]!.request({
      ":method": "POST",
      ":path": "/dispatch.app.v1.AppService/PlaceOrder",
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${o.token}`,
      "grpc-timeout": "5S",
    });
    const chunks: Buffer[] = [];
    let status: string | undefined;
    let message = "";
    stream.on("response", (h) => {
      if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
      message = String(h["grpc-message"] ?? "");
    });
    stream.on("trailers", (t) => {
      status = String(t["grpc-status"]);
      message = decodeURIComponent(String(t["grpc-message"] ?? ""));
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", (e) => {
      inFlight--;
      fail(e.message, measured);
    });
    stream.on("end", () => {
      inFlight--;
      const ms = performance.now() - scheduled;
      if (status !== "0") return fail(`grpc-status ${status}: ${message}`, measured);
      const buf = Buffer.concat(chunks);
      const reply = fromBinary(PlaceOrderResponseSchema, buf.subarray(5, 5 + buf.readUInt32BE(1)));
      const order = reply.order;
      if (!order?.id || seen.has(order.id))
        return fail(`no new order id in ${JSON.stringify(order?.id)}`, measured);
      seen.add(order.id);
      if (totalMinor(order) !== o.expectTotalMinor || order.items.length !== o.items.length)
        return fail(`order ${order.id}: total ${totalMinor(order)}, ${order.items.length} lines`, measured);
      if (measured) {
        ok++;
        latencies.push(ms);
      }
    });
    stream.end(body);
  };
  const t0 = performance.now();
  const warmEnd = t0 + o.warmupS * 1000;
  const end = warmEnd + o.durationS * 1000;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      const due = Math.min(now, end);
      // every send scheduled up to now, each at its own scheduled instant
      while (t0 + (sent * 1000) / o.rps <= due) {
        const scheduled = t0 + (sent * 1000) / o.rps;
        const measured = scheduled >= warmEnd;
        if (inFlight > 2000) fail("over 2000 calls outstanding: not sent", measured);
        else call(sent, scheduled, measured);
        if (measured) measuredSent++;
        sent++;
      }
      if (now >= end) {
        clearInterval(tick);
        const wait = setInterval(() => {
          if (inFlight === 0 || performance.now() > end + 10_000) {
            clearInterval(wait);
            resolve();
          }
        }, 10);
      }
    }, 1);
  });
  for (const s of sessions) s.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => quantile(latencies, q);
  return {
    rps: o.rps,
    sent: measuredSent,
    ok,
    errors: errors + (measuredSent - ok - errors),
    errorSample,
    achievedRps: ok / o.durationS,
    p50Ms: at(0.5),
    p90Ms: at(0.9),
    p99Ms: at(0.99),
    maxMs: latencies.at(-1) ?? Number.NaN,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await drive(JSON.parse(process.argv[2]!) as DriverOptions);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}
