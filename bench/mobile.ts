/**
 * The mobile flows under load through the gateway, on the whole stack (bench/stack.ts) and real
 * PostgreSQL: active orders (h2load, Connect JSON over HTTP/1.1 and gRPC over h2c; fixed rate, then a
 * step search) and place order (bench/driver.ts, fixed rate then a step search), with every service's
 * RSS idle and at the end of the active-orders load.
 */
import { spawn } from "node:child_process";
import http from "node:http";
import { create, type JsonValue, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import {
  AppService,
  ListActiveOrdersRequestSchema,
  type Order,
  OrderStatus,
} from "../gen/dispatch/app/v1/app_pb.ts";
import { demoData } from "../services/catalog/src/store/seed.ts";
import type { DriverOptions, DriverResult } from "./driver.ts";
import { startFloor } from "./floor.ts";
import { type FromSchedule, grpcBody, h2load } from "./h2load.ts";
import {
  counterBy,
  cpuPerCall,
  cpuSeconds,
  errorLines,
  type ServiceName,
  type Stack,
  startStack,
} from "./stack.ts";

export const fixedS = Number(process.env.BENCH_FIXED_S ?? 30);
export const stepS = Number(process.env.BENCH_STEP_S ?? 10);
/** Place order's warm-up at its fixed rate before the measured run (not reported). */
export const placeWarmupS = Number(process.env.BENCH_PLACE_WARMUP_S ?? 10);
/**
 * Active orders' warm-up before each protocol's fixed runs, and the floor's before its own (not
 * reported): this many h2load runs at 500 rps, each of activeWarmupS. A fresh stack is not done
 * compiling in its first run: `--trace-opt --trace-deopt`, four 10 s runs in turns on a fresh stack,
 * showed the gateway and orders each making 170-222 TurboFan compilations 20-25 s into the load (8-74
 * per 5 s from the third run on), and h2load closing its connections at the first run's end deoptimizing
 * 45-66 functions of node's socket, stream and HTTP code in the gateway at once. In three fresh stacks
 * (Connect JSON) the second run had p99 22-29 ms, the third and later 7-12 (BENCHMARKS-ROUNDS.md,
 * thirty-third round). Runs, not one long run, so that one close has happened before the measured runs.
 * A warm-up's errors are held against the fixed run after it (withWarmupErrors).
 */
export const activeWarmupRuns = Number(process.env.BENCH_ACTIVE_WARMUP_RUNS ?? 2);
export const activeWarmupS = Number(process.env.BENCH_ACTIVE_WARMUP_S ?? 10);
/** The warm-up runs at 500 rps (`run` makes one of activeWarmupS), each logged; their points for withWarmupErrors. */
async function warmUp(label: string, run: () => Promise<Point>): Promise<Point[]> {
  const warmups: Point[] = [];
  for (let i = 0; i < activeWarmupRuns; i++) {
    const w = await run();
    warmups.push(w);
    console.error(
      `${label}: warm-up ${i + 1} of ${activeWarmupRuns}, ${activeWarmupS} s at 500 rps: p99 ${w.p99Ms.toFixed(1)} ms (not reported), ${w.errors} errors (held against the fixed run)`,
    );
  }
  return warmups;
}

/** `fixed` with the errors of the warm-up runs before it added (their codes named), so none goes unreported. */
export function withWarmupErrors<T extends Point>(fixed: T, warmups: Point[]): T {
  const failed = warmups.filter((w) => w.errors > 0);
  if (failed.length === 0) return fixed;
  const errors = failed.reduce((n, w) => n + w.errors, 0);
  const codes = failed.map((w) => w.errorCodes || `${w.errors} errors`).join("; ");
  return {
    ...fixed,
    errors: fixed.errors + errors,
    errorCodes: [fixed.errorCodes, `warm-up: ${codes}`].filter(Boolean).join("; "),
  };
}

const USERS = 10_000;
const ORDERS_PER_USER = 10;
const ITEMS_PER_ORDER = 5;
/** The signed-in user has 3 active orders (5 lines each) among their 10. */
const BENCH_USER_ACTIVE = 3;

export interface Point {
  protocol: string;
  targetRps: number;
  achievedRps: number;
  requests: number;
  errors: number;
  /** What failed: the gateway's status codes (warm-up and sampler calls included), or the driver's sample. */
  errorCodes?: string;
  /** CPU time per call of each process (services, all of PostgreSQL, Redis), warm-up included. */
  cpuUsPerCall?: Record<string, number>;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  /**
   * Latency counted from when the rate had each call leave (bench/h2load.ts, `fromSchedule`): h2load's
   * evenly spaced runs; the driver (place order) measures so already, so there it is p50/p90/p99.
   */
  fromSchedule?: FromSchedule;
  /** How h2load's calls left (bench/h2load.ts): evenly spaced, or in bursts of its clients; unset: the driver's, even. */
  arrivals?: Arrivals;
}

export type Arrivals = "even" | "bursts";

export interface MobileReport {
  seed: { users: number; orders: number; items: number; activeOrders: number; seedS: number };
  plan: string;
  /** The repository's active-orders statement in PostgreSQL's plan cache (see `planCache`). */
  planCache: { generic: number; custom: number } | string;
  indexesUsed: string[];
  activeFixed: Point[];
  /** The fixed runs again, the calls in h2load's bursts (the shape of the reports up to the seventeenth round). */
  activeBursts: Point[];
  activeSteps: Point[];
  activeBest: Record<string, number>;
  placeFixed: Point;
  placeSteps: Point[];
  placeBest: number;
  /** bench/floor.ts: the active-orders path with nothing but the unavoidable work, gRPC. */
  floorFixed: Point;
  floorBursts: Point;
  /** The floor at place order's rate (200 rps): place order's path holds this one and more. */
  floorAt200: Point;
  floorSteps: Point[];
  floorBest: number;
  samplesChecked: number;
  rssIdle: Record<ServiceName, number>;
  rssLoaded: Record<ServiceName, number>;
  /** The anonymous part (the process's own memory) of each figure above. */
  anonIdle: Record<ServiceName, number>;
  anonLoaded: Record<ServiceName, number>;
}

/** 10k users, 100k orders, 5 lines each, one status-history row per order; the bench user is user 1. */
export function seed(stack: Stack, benchUser: string): MobileReport["seed"] {
  const t0 = performance.now();
  const restaurants = demoData().restaurants.map((r) => `('${r.id}', '${r.name!.replace(/'/g, "''")}')`);
  stack.psql(
    "orders",
    `
INSERT INTO restaurants (id, name) VALUES ${restaurants.join(",")} ON CONFLICT (id) DO NOTHING;
CREATE TEMP TABLE u AS
  SELECT n, CASE WHEN n = 1 THEN :'bench_user' ELSE gen_random_uuid()::text END AS user_id,
         CASE WHEN n = 1 THEN ${BENCH_USER_ACTIVE} ELSE n % 4 END AS active
  FROM generate_series(1, ${USERS}) n;
CREATE TEMP TABLE o AS
  SELECT gen_random_uuid() AS id, u.n, k, u.user_id,
         'rst-' || lpad((((u.n + k) % 23) + 1)::text, 3, '0') AS restaurant_id,
         CASE WHEN k <= u.active THEN (ARRAY['PLACED','ACCEPTED','PREPARING','OUT_FOR_DELIVERY'])[1 + (u.n + k) % 4]
              WHEN k % 7 = 0 THEN 'CANCELLED' ELSE 'DELIVERED' END AS status,
         now() - make_interval(hours => k * 20 + (u.n % 13)) AS created_at
  FROM u, generate_series(1, ${ORDERS_PER_USER}) k;
INSERT INTO orders (id, request_id, request_hash, user_id, restaurant_id, status, currency_code,
                    subtotal_minor, delivery_fee_minor, total_minor, delivery_address, note, created_at, updated_at)
  SELECT id, 'seed-' || id, 'seed', user_id, restaurant_id, status, 'EUR', 6400, 199, 6599,
         jsonb_build_object('line1', 'Torstrasse ' || n, 'line2', '', 'city', 'Berlin',
                            'postalCode', '10119', 'countryCode', 'DE'),
         '', created_at, created_at
  FROM o;
INSERT INTO order_items (order_id, line_no, menu_item_id, name, quantity, unit_price_minor)
  SELECT o.id, l, o.restaurant_id || '-item-' || lpad(l::text, 2, '0'), 'Dish ' || l, 1 + l % 2, 500 + 100 * l
  FROM o, generate_series(1, ${ITEMS_PER_ORDER}) l;
INSERT INTO order_status_history (order_id, status, changed_at) SELECT id, status, created_at FROM o;
-- As a database that has been running: hint bits and the visibility map set, statistics taken, and the
-- bulk load written out, so that no scenario pays for the load itself (the first reads that set hint bits
-- on 600k fresh rows, or the checkpoint that writes them out, with every page first changed after it
-- going whole to the WAL).
VACUUM ANALYZE;
CHECKPOINT;
`,
    { bench_user: benchUser },
  );
  const [orders, items, active] = stack
    .psql(
      "orders",
      `SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM order_items),
              (SELECT count(*) FROM orders WHERE status NOT IN ('DELIVERED','CANCELLED'))`,
    )
    .trim()
    .split("|")
    .map(Number);
  return {
    users: USERS,
    orders: orders!,
    items: items!,
    activeOrders: active!,
    seedS: Math.round((performance.now() - t0) / 100) / 10,
  };
}

/**
 * The active-orders query as the repository sends it, written out ($1: the user id; the repository binds
 * the limit, and writes the statuses as literals as here: see ACTIVE_STATUS_LIST in orders-repository.ts).
 */
export const ACTIVE_SQL = `SELECT o.id, o.user_id, o.restaurant_id, o.status, o.currency_code, o.subtotal_minor,
       o.delivery_fee_minor, o.total_minor, o.delivery_address, o.note, o.created_at, o.updated_at, r.name,
       (SELECT coalesce(json_agg(json_build_array(i.menu_item_id, i.name, i.quantity, i.unit_price_minor)
                                 ORDER BY i.line_no), '[]'::json)
        FROM order_items i WHERE i.order_id = o.id)
FROM orders o JOIN restaurants r ON r.id = o.restaurant_id
WHERE o.user_id = $1
  AND o.status IN ('PENDING_PAYMENT','PLACED','ACCEPTED','PREPARING','READY_FOR_PICKUP','OUT_FOR_DELIVERY')
ORDER BY o.created_at DESC, o.id DESC LIMIT 50`;

/**
 * Whether PostgreSQL keeps one generic plan for the active-orders statement or plans every execution: the
 * statement's text as orders sent it (from pg_stat_activity, after the load), prepared in a session of its
 * own and run 12 times for the bench user. The first five executions are always planned for their values;
 * PostgreSQL then keeps a generic plan unless it estimates it costlier, and otherwise plans every
 * execution anew (with the statuses bound as parameters it did in half of ANALYZE's samples, doubling its
 * CPU per call: docs/BENCHMARKS-ROUNDS.md, "Sixteenth round"). A string says why it could not be checked.
 */
function planCache(stack: Stack, userId: string): MobileReport["planCache"] {
  const statement = stack
    .psql(
      "orders",
      `SELECT query FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
         AND query LIKE '%json_agg%' LIMIT 1`,
    )
    .trim();
  if (!statement) return "orders' statement was not found in pg_stat_activity";
  if (Buffer.byteLength(statement) >= 1023) return "pg_stat_activity truncated orders' statement";
  const params = [...new Set(statement.match(/\$\d+/g))].sort();
  // $1 is the user; the repository binds the limit as $2.
  if (params.join() !== "$1,$2")
    return `orders' statement binds ${params.join(", ")}, not only the user and the limit`;
  const out = stack.psql(
    "orders",
    `PREPARE active AS ${statement};\n\\o /dev/null\n${"EXECUTE active(:'u', 50);\n".repeat(12)}\\o
SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = 'active';`,
    { u: userId },
  );
  const [generic, custom] = out.trim().split("\n").at(-1)!.split("|").map(Number);
  return { generic: generic!, custom: custom! };
}

/** The plan of the active-orders query (the repository's query, written out) for the bench user. */
function plan(stack: Stack, userId: string): { text: string; indexes: string[] } {
  const text = stack.psql(
    "orders",
    `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON)\n${ACTIVE_SQL.replace("$1", ":'u'")};`,
    { u: userId },
  );
  const indexes = [
    ...new Set(
      [
        ...text.matchAll(/(?:Index|Index Only) Scan(?: Backward)? using (\S+)|Bitmap Index Scan on (\S+)/g),
      ].map((m) => (m[1] ?? m[2])!),
    ),
  ];
  return { text: text.trimEnd(), indexes };
}

/** A set-up call (sign-up, sign-in) as Connect JSON; a fresh connection each, so none races a keep-alive timeout. */
export function call<T>(url: string, method: string, body: JsonValue, token?: string): Promise<T> {
  const payload = JSON.stringify(body);
  return new Promise<T>((resolve, reject) => {
    const req = http.request(
      `${url}/dispatch.app.v1.AppService/${method}`,
      {
        method: "POST",
        agent: false,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          text += d;
        });
        res.on("end", () => {
          if (res.statusCode !== 200) reject(new Error(`${method}: HTTP ${res.statusCode} ${text}`));
          else resolve(JSON.parse(text) as T);
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

export async function signIn(url: string, email: string): Promise<{ userId: string; token: string }> {
  const r = await call<{ session: { userId: string; accessToken: string } }>(url, "SignIn", {
    email,
    password: "bench-password-1",
  });
  return { userId: r.session.userId, token: r.session.accessToken };
}

/** What the bench user's active orders must look like (from the seed). */
function checkActive(orders: Order[]): void {
  if (orders.length !== BENCH_USER_ACTIVE)
    throw new Error(`expected ${BENCH_USER_ACTIVE} active orders, got ${orders.length}`);
  for (const o of orders) {
    if (o.items.length !== ITEMS_PER_ORDER) throw new Error(`order ${o.id}: ${o.items.length} items`);
    if (o.total?.amountMinor !== 6599n) throw new Error(`order ${o.id}: total ${o.total?.amountMinor}`);
    if (!o.restaurantName) throw new Error(`order ${o.id}: no restaurant name`);
    if (
      o.status === OrderStatus.DELIVERED ||
      o.status === OrderStatus.CANCELLED ||
      o.status === OrderStatus.UNSPECIFIED
    )
      throw new Error(`order ${o.id}: status ${OrderStatus[o.status]}`);
  }
  const times = orders.map((o) => Number(o.createTime?.seconds ?? 0));
  if (times.some((t, i) => i > 0 && t > times[i - 1]!)) throw new Error("active orders are not newest first");
}

/**
 * While h2load runs (it only sees HTTP statuses), a real client asks for the same list every 100 ms over
 * the other protocol and checks every answer; and the gateway's own metrics must show every call OK.
 */
function sampler(url: string, token: string, protocol: "connect" | "grpc") {
  const transport =
    protocol === "connect"
      ? createConnectTransport({ baseUrl: url, httpVersion: "1.1" })
      : createGrpcTransport({ baseUrl: url });
  const client = createClient(AppService, transport);
  let checked = 0;
  let failure: unknown;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const r = await client.listActiveOrders({}, { headers: { authorization: `Bearer ${token}` } });
        checkActive(r.orders);
        checked++;
      } catch (e) {
        failure ??= e;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
    if (failure) throw failure;
    return checked;
  };
}

/** The gateway's own count of a method's calls by status code (one scrape). */
function handled(stack: Stack, method: string): Promise<Map<string, number>> {
  return counterBy(
    stack.adminPorts.gateway,
    "grpc_server_handled_total",
    { grpc_service: "dispatch.app.v1.AppService", grpc_method: method },
    "grpc_code",
  );
}

const total = (counts: Map<string, number>) => [...counts.values()].reduce((a, b) => a + b, 0);

/**
 * Calls that ended with a code other than OK between two readings, e.g. "Unavailable 3". Canceled is
 * listed but not counted as an error: it is the client going away, which h2load does to the calls
 * still in flight when its duration ends.
 */
function notOk(before: Map<string, number>, after: Map<string, number>): { count: number; codes: string } {
  let count = 0;
  const codes: string[] = [];
  for (const [code, n] of after) {
    const d = n - (before.get(code) ?? 0);
    if (code === "OK" || d === 0) continue;
    if (code === "Canceled") {
      codes.push(`Canceled ${d}, by the load generator at its end`);
      continue;
    }
    count += d;
    codes.push(`${code} ${d}`);
  }
  return { count, codes: codes.join(", ") };
}

export async function activeRun(
  stack: Stack,
  email: string,
  protocol: "connect" | "grpc",
  rps: number,
  durationS: number,
  arrivals: Arrivals = "even",
): Promise<Point & { checked: number }> {
  const { token } = await signIn(stack.gatewayUrl, email);
  const url = `${stack.gatewayUrl}/dispatch.app.v1.AppService/ListActiveOrders`;
  // HTTP/1.1: one request at a time per connection (no pipelining), so more connections.
  const clients = protocol === "connect" ? Math.max(20, Math.min(200, Math.ceil(rps / 40))) : 10;
  const opts =
    protocol === "connect"
      ? {
          body: Buffer.from("{}"),
          headers: ["content-type: application/json", `authorization: Bearer ${token}`],
          h1: true,
          streams: 1,
        }
      : {
          body: grpcBody(toBinary(ListActiveOrdersRequestSchema, create(ListActiveOrdersRequestSchema, {}))),
          headers: ["content-type: application/grpc", "te: trailers", `authorization: Bearer ${token}`],
          h1: false,
          streams: 10,
        };
  const before = await handled(stack, "ListActiveOrders");
  const cpuBefore = cpuSeconds(stack);
  const startedAt = Date.now();
  const stopSampling = sampler(stack.gatewayUrl, token, protocol === "connect" ? "grpc" : "connect");
  const result = await h2load({ url, clients, rps: rps / clients, durationS, warmupS: 2, arrivals, ...opts });
  const checked = await stopSampling();
  const after = await handled(stack, "ListActiveOrders");
  const failed = notOk(before, after);
  const errors = Math.max(failed.count, result.requests - result.succeeded);
  // every call h2load saw succeed must be an OK the gateway counted (gRPC errors are HTTP 200)
  const oks = (after.get("OK") ?? 0) - (before.get("OK") ?? 0);
  if (oks < result.succeeded) throw new Error(`gateway counted ${oks} OK calls, h2load ${result.succeeded}`);
  return {
    protocol: protocol === "connect" ? "Connect JSON, HTTP/1.1" : "gRPC, h2c",
    targetRps: rps,
    achievedRps: Math.round(result.reqPerSec),
    requests: result.requests,
    arrivals,
    errors,
    errorCodes: [failed.codes, ...(errors > 0 ? errorLines(stack, startedAt) : [])]
      .filter(Boolean)
      .join("; "),
    cpuUsPerCall: cpuPerCall(cpuBefore, cpuSeconds(stack), total(after) - total(before)),
    p50Ms: result.p50Ms,
    p90Ms: result.p90Ms,
    p99Ms: result.p99Ms,
    fromSchedule: result.fromSchedule,
    checked,
  };
}

export async function placeRun(stack: Stack, email: string, rps: number, durationS: number): Promise<Point> {
  const { token } = await signIn(stack.gatewayUrl, email);
  const demo = demoData();
  const menu = demo.menuItems.filter((m) => m.restaurantId === "rst-001");
  const items = menu.slice(0, ITEMS_PER_ORDER).map((m, i) => ({ menuItemId: m.id!, quantity: 1 + (i % 2) }));
  const subtotal = items.reduce((s, it, i) => s + it.quantity * menu[i]!.priceMinor!, 0);
  const fee = demo.restaurants.find((r) => r.id === "rst-001")!.deliveryFeeMinor!;
  const options: DriverOptions = {
    url: stack.gatewayUrl,
    token,
    rps,
    durationS,
    warmupS: 2,
    connections: 4,
    restaurantId: "rst-001",
    items,
    expectTotalMinor: subtotal + fee,
  };
  const before = await handled(stack, "PlaceOrder");
  const cpuBefore = cpuSeconds(stack);
  const startedAt = Date.now();
  const r = await new Promise<DriverResult>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "bench/driver.ts", JSON.stringify(options)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d;
    });
    child.once("exit", (code) =>
      code === 0 ? resolve(JSON.parse(out) as DriverResult) : reject(new Error(`driver exited ${code}`)),
    );
  });
  if (r.errors > 0)
    console.error(`place order at ${rps} rps: ${r.errors} errors, e.g. ${r.errorSample.join("; ")}`);
  return {
    protocol: "gRPC, h2c",
    targetRps: rps,
    achievedRps: Math.round(r.achievedRps),
    requests: r.sent,
    errors: r.errors,
    errorCodes: [...r.errorSample, ...(r.errors > 0 ? errorLines(stack, startedAt) : [])].join("; "),
    cpuUsPerCall: cpuPerCall(
      cpuBefore,
      cpuSeconds(stack),
      total(await handled(stack, "PlaceOrder")) - total(before),
    ),
    p50Ms: r.p50Ms,
    p90Ms: r.p90Ms,
    p99Ms: r.p99Ms,
    fromSchedule: { p50Ms: r.p50Ms, p90Ms: r.p90Ms, p99Ms: r.p99Ms },
  };
}

/**
 * A step holds its rate: no error, the rate kept within 5 %, and p99 within the limit counted from when
 * each call was due (`Point.fromSchedule`), so that calls h2load held back for a free stream or
 * connection count their wait (twenty-sixth round).
 */
const passes = (p: Point, p99Ms: number) =>
  p.errors === 0 && (p.fromSchedule ?? p).p99Ms <= p99Ms && p.achievedRps >= p.targetRps * 0.95;

async function stepSearch(
  run: (rps: number) => Promise<Point>,
  steps: number[],
  p99Ms: number,
): Promise<{ points: Point[]; best: number }> {
  const points: Point[] = [];
  let best = 0;
  for (const rps of steps) {
    const p = await run(rps);
    points.push(p);
    console.error(
      `  ${p.protocol} ${rps} rps: p99 ${p.p99Ms.toFixed(1)} ms (from schedule ${p.fromSchedule?.p99Ms.toFixed(1) ?? "–"}), ${p.errors} errors, ${p.achievedRps} req/s`,
    );
    if (!passes(p, p99Ms)) break;
    best = rps;
  }
  return { points, best };
}

export async function mobile(): Promise<MobileReport> {
  const stack = await startStack();
  try {
    const email = `bench-${process.pid}@example.com`;
    const placeEmail = `bench-place-${process.pid}@example.com`;
    for (const e of [email, placeEmail])
      await call(stack.gatewayUrl, "SignUp", {
        email: e,
        password: "bench-password-1",
        displayName: "Bench",
      });
    const { userId } = await signIn(stack.gatewayUrl, email);
    console.error("seeding orders …");
    const seeded = seed(stack, userId);
    const { text, indexes } = plan(stack, userId);
    console.error(text);
    await new Promise((r) => setTimeout(r, 2000));
    const idle = stack.rssAnon();
    const rssIdle = {} as Record<ServiceName, number>;
    const anonIdle = {} as Record<ServiceName, number>;
    for (const [s, m] of Object.entries(idle)) {
      rssIdle[s as ServiceName] = m.rssMb;
      anonIdle[s as ServiceName] = m.anonMb;
    }
    const rssLoaded = { ...rssIdle };
    const anonLoaded = { ...anonIdle };
    const peak = setInterval(() => {
      for (const [s, m] of Object.entries(stack.rssAnon())) {
        rssLoaded[s as ServiceName] = Math.max(rssLoaded[s as ServiceName], m.rssMb);
        anonLoaded[s as ServiceName] = Math.max(anonLoaded[s as ServiceName], m.anonMb);
      }
    }, 250);
    let samplesChecked = 0;
    const activeFixed: Point[] = [];
    const activeBursts: Point[] = [];
    const activeSteps: Point[] = [];
    const activeBest: Record<string, number> = {};
    const steps = [500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 5000, 6000];
    for (const protocol of ["connect", "grpc"] as const) {
      const warmups = await warmUp(`active orders, ${protocol}`, async () => {
        const w = await activeRun(stack, email, protocol, 500, activeWarmupS);
        samplesChecked += w.checked;
        return w;
      });
      console.error(`active orders, ${protocol}: ${fixedS} s at 500 rps`);
      const fixed = withWarmupErrors(await activeRun(stack, email, protocol, 500, fixedS), warmups);
      samplesChecked += fixed.checked;
      activeFixed.push(fixed);
      console.error(`active orders, ${protocol}: ${fixedS} s at 500 rps, the calls in h2load's bursts`);
      const bursts = await activeRun(stack, email, protocol, 500, fixedS, "bursts");
      samplesChecked += bursts.checked;
      activeBursts.push(bursts);
      const search = await stepSearch(
        async (rps) => {
          const p = await activeRun(stack, email, protocol, rps, stepS);
          samplesChecked += p.checked;
          return p;
        },
        steps,
        50,
      );
      activeSteps.push(...search.points);
      activeBest[fixed.protocol] = search.best;
    }
    clearInterval(peak);
    let cached: MobileReport["planCache"];
    try {
      cached = planCache(stack, userId);
    } catch (err) {
      cached = `the check failed: ${(err as Error).message.split("\n")[0]}`;
    }
    console.error("the active-orders statement in PostgreSQL's plan cache:", cached);

    console.error(`the floor: ${fixedS} s at 500 rps`);
    const { token } = await signIn(stack.gatewayUrl, email);
    const floor = await startFloor(stack, {
      userId,
      token,
      sql: ACTIVE_SQL,
      requestBody: grpcBody(
        toBinary(ListActiveOrdersRequestSchema, create(ListActiveOrdersRequestSchema, {})),
      ),
    });
    let floorFixed: Point;
    let floorBursts: Point;
    let floorAt200: Point;
    let floorSearch: { points: Point[]; best: number };
    try {
      const warmups = await warmUp("the floor", () => floor.run(500, activeWarmupS));
      floorFixed = withWarmupErrors(await floor.run(500, fixedS), warmups);
      floorBursts = await floor.run(500, fixedS, "bursts");
      floorAt200 = await floor.run(200, fixedS);
      floorSearch = await stepSearch((rps) => floor.run(rps, stepS), steps, 50);
    } finally {
      await floor.stop();
    }

    // The stack's first PlaceOrder load grows every pool on the path (each new PostgreSQL backend plans
    // its statements) and has V8 compile the path: warmed up first, as the active-orders path is by then.
    console.error(`place order: ${placeWarmupS} s at 200 rps to warm up, then ${fixedS} s at 200 rps`);
    await placeRun(stack, placeEmail, 200, placeWarmupS);
    const placeFixed = await placeRun(stack, placeEmail, 200, fixedS);
    const place = await stepSearch(
      (rps) => placeRun(stack, placeEmail, rps, stepS),
      [200, 400, 600, 800, 1000, 1200, 1500],
      50,
    );
    return {
      seed: seeded,
      plan: text,
      planCache: cached,
      indexesUsed: indexes,
      activeFixed,
      activeBursts,
      activeSteps,
      activeBest,
      placeFixed,
      placeSteps: place.points,
      placeBest: place.best,
      floorFixed,
      floorBursts,
      floorAt200,
      floorSteps: floorSearch.points,
      floorBest: floorSearch.best,
      samplesChecked,
      rssIdle,
      rssLoaded,
      anonIdle,
      anonLoaded,
    };
  } finally {
    await stack.stop();
  }
}
