/**
 * A small gRPC load generator for the overload scenario, run as its own process so its CPU is not the
 * service's: raw node:http2 unary calls (5-byte frame + protobuf), closed loop (a fixed number in flight)
 * or open loop (a fixed rate). Prints one JSON line: calls by grpc-status, latencies of OK calls.
 *   node loadgen.ts <port> <path> <bodyHex> closed:<concurrency>|open:<rate> <durationMs> <connections>
 */
import http2 from "node:http2";

const [port, path, bodyHex, mode, duration, conns] = process.argv.slice(2);
const payload = Buffer.from(bodyHex!, "hex");
const frame = Buffer.alloc(5 + payload.length);
frame.writeUInt32BE(payload.length, 1);
payload.copy(frame, 5);
const sessions = Array.from({ length: Number(conns) }, () =>
  http2.connect(`http://127.0.0.1:${port}`, {
    // thousands of calls queue on a connection while the server is paused (scenario 7): node's 10 MB
    // default made the generator refuse its own streams (ENHANCE_YOUR_CALM) and end its sessions
    maxSessionMemory: 512,
  }),
);
const goaways: string[] = [];
for (const s of sessions) {
  s.on("error", () => {});
  // a connection the server ended, and why (nghttp2 puts its reason in the opaque data)
  s.on("goaway", (code, _last, data) => goaways.push(`${code}${data?.length ? ` ${data.toString()}` : ""}`));
}
const headers = { ":method": "POST", ":path": path!, "content-type": "application/grpc", te: "trailers" };
const byStatus: Record<string, number> = {};
const okMs: number[] = [];
let next = 0;

function call(): Promise<void> {
  const s = sessions[next++ % sessions.length]!;
  const t0 = performance.now();
  return new Promise((resolve) => {
    let status = "no-status";
    const req = s.request(headers);
    req.on("response", (h) => {
      if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
    });
    req.on("trailers", (t) => {
      status = String(t["grpc-status"]);
    });
    req.on("error", (err: NodeJS.ErrnoException) => {
      // named by who ended it: the peer's RST_STREAM code, or the local error's code
      status = `stream-error:${req.rstCode ? `rst-${req.rstCode}` : err.code}`;
    });
    req.on("data", () => {});
    req.on("close", () => {
      byStatus[status] = (byStatus[status] ?? 0) + 1;
      if (status === "0") okMs.push(performance.now() - t0);
      resolve();
    });
    req.end(frame);
  });
}

const [kind, n] = mode!.split(":");
const until = performance.now() + Number(duration);
const pending: Promise<void>[] = [];
const started = performance.now();
if (kind === "closed") {
  await Promise.all(
    Array.from({ length: Number(n) }, async () => {
      while (performance.now() < until) await call();
    }),
  );
} else {
  let sent = 0;
  while (performance.now() < until) {
    const due = Math.floor(((performance.now() - started) / 1000) * Number(n));
    while (sent < due) {
      pending.push(call());
      sent++;
    }
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(pending);
}
const seconds = (performance.now() - started) / 1000;
okMs.sort((a, b) => a - b);
const pct = (p: number) => okMs[Math.min(okMs.length - 1, Math.ceil((p / 100) * okMs.length) - 1)] ?? null;
const total = Object.values(byStatus).reduce((a, b) => a + b, 0);
console.log(
  JSON.stringify({
    seconds,
    total,
    rate: total / seconds,
    byStatus,
    okP50: pct(50),
    okP99: pct(99),
    okMax: okMs.at(-1),
    goaways,
  }),
);
for (const s of sessions) s.close();
