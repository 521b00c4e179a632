// The floor's backend: what orders cannot avoid for ListActiveOrders. node:http2 takes the call, runs the
// active-orders query (the repository's SQL written out, with the same plan: the statuses are literals in
// both, the limit a literal here and bound there; a named prepared statement, postgres.js, a pool of 10
// as orders has) and answers with a precomputed reply of the real reply's bytes: no protobuf,
// no row mapping, no logging, no metrics, no deadline, no breaker.
import http2 from "node:http2";
import postgres from "postgres";

const sql = postgres(process.env.DATABASE_URL!, { max: 10 });
const query = process.env.FLOOR_SQL!;
const userId = process.env.FLOOR_USER_ID!;
const reply = Buffer.from(process.env.FLOOR_REPLY_BASE64!, "base64");
const headers = { ":status": 200, "content-type": "application/grpc" };
const ok = { "grpc-status": "0" };

const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
server.on("stream", (stream) => {
  stream.on("data", () => {});
  stream.on("end", async () => {
    let rows: number;
    try {
      rows = (await sql.unsafe(query, [userId], { prepare: true })).length;
    } catch {
      rows = 0;
    }
    if (stream.destroyed) return;
    // A failed or empty read is an HTTP error, so h2load counts it as one.
    if (rows === 0) return stream.respond({ ":status": 500 }, { endStream: true });
    stream.respond(headers, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers(ok));
    stream.end(reply);
  });
});
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  process.stderr.write(`READY ${(server.address() as { port: number }).port}\n`);
});
process.on("SIGTERM", () => server.close(() => sql.end().then(() => process.exit(0))));
