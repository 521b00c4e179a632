import { execFileSync } from "node:child_process";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { accessLogger, createLogger, RpcLog } from "./logger.ts";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split("\n").filter(Boolean)) {
        raw.push(l);
        lines.push(JSON.parse(l));
      }
      done();
    },
  });
  return { lines, raw, destination };
}

describe("createLogger", () => {
  it("writes JSON lines with the service name", () => {
    const out = capture();
    createLogger({ name: "orders", destination: out.destination }).info({ requestId: "r-1" }, "rpc");
    expect(out.lines[0]).toMatchObject({ service: "orders", requestId: "r-1", msg: "rpc", level: 30 });
  });

  it("redacts credentials and personal data wherever a caller puts them", () => {
    const out = capture();
    const log = createLogger({ name: "identity", destination: out.destination });
    const secrets = {
      password: "correct horse battery staple",
      email: "ada@example.com",
      refreshToken: "rt_9f8e7d6c5b4a",
      accessToken: "eyJhbGciOiJFUzI1NiJ9.payload.sig",
    };
    log.info({ request: { ...secrets, name: "Ada" } }, "sign in");
    log.warn({ headers: { authorization: "Bearer eyJhbGciOiJFUzI1NiJ9.payload.sig" } }, "edge");
    log.error({ err: { details: { token: "push-abc123", email: secrets.email } } }, "failed");
    log.info({ password: secrets.password, user: { phone: "+49 30 1234567" } }, "flat");
    const all = out.raw.join("\n");
    for (const s of [...Object.values(secrets), "push-abc123", "+49 30 1234567"])
      expect(all).not.toContain(s);
    expect(out.lines[0]).toMatchObject({ request: { password: "[redacted]", name: "Ada" } });
    expect(out.lines[1]).toMatchObject({ headers: { authorization: "[redacted]" } });
  });

  it("writes every line to stdout, multi-byte text intact, even when the process exits right after", () => {
    const logger = fileURLToPath(new URL("./logger.ts", import.meta.url));
    const script = `import { createLogger } from ${JSON.stringify(logger)};
      const log = createLogger({ name: "exit-test" });
      for (let i = 0; i < 2000; i++) log.info({ i, city: "Zürich", dish: "寿司" }, "line");
      process.exit(0);`;
    const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      env: { ...process.env, NODE_ENV: "production", LOG_LEVEL: "info" },
      encoding: "utf8",
    });
    const lines = out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { i: number; city: string; dish: string });
    expect(lines).toHaveLength(2000);
    expect(lines.map((l) => l.i)).toEqual([...Array(2000).keys()]);
    expect(lines.every((l) => l.city === "Zürich" && l.dish === "寿司")).toBe(true);
  });
});

describe("RpcLog", () => {
  const fields = {
    durationMs: 1.234,
    peer: "127.0.0.1:50123",
    requestId: 'r-"quoted"\nline \u2028 Zürich',
    traceId: "0af7651916cd43dd8448eb211c80319c",
    spanId: "b7ad6b7169203331",
  };

  it("writes the line pino would write for the same fields, keys in the same order", () => {
    for (const [code, name, level] of [
      [0, "OK", 30],
      [5, "NotFound", 30],
      [13, "Internal", 50],
    ] as const) {
      const ours = capture();
      new RpcLog(createLogger({ name: "orders", destination: ours.destination }), "o.v1.Orders", "Get").write(
        {
          code,
          ...fields,
          protocol: "grpc",
        },
      );
      const pinos = capture();
      const child = accessLogger(createLogger({ name: "orders", destination: pinos.destination })).child({
        rpc: { service: "o.v1.Orders", method: "Get" },
      });
      const line = {
        code: name,
        durationMs: fields.durationMs,
        peer: fields.peer,
        requestId: fields.requestId,
        trace_id: fields.traceId,
        span_id: fields.spanId,
        protocol: "grpc",
      };
      if (level === 50) child.error(line, "rpc");
      else child.info(line, "rpc");
      expect(ours.lines).toHaveLength(1);
      const [a, b] = [ours.lines[0]!, pinos.lines[0]!];
      expect(typeof a.time).toBe("number");
      expect(Object.keys(a)).toEqual(Object.keys(b));
      expect({ ...a, time: 0 }).toEqual({ ...b, time: 0 });
      expect(a).toMatchObject({ level, code: name, requestId: fields.requestId });
    }
  });

  it("leaves out trace ids and protocol when the call has none", () => {
    const out = capture();
    new RpcLog(createLogger({ name: "orders", destination: out.destination }), "o.v1.Orders", "Get").write({
      code: 0,
      durationMs: 2,
      peer: "",
      requestId: "r-1",
    });
    expect(Object.keys(out.lines[0]!)).toEqual([
      "level",
      "time",
      "service",
      "name",
      "rpc",
      "code",
      "durationMs",
      "peer",
      "requestId",
      "msg",
    ]);
  });

  it("keeps to the logger's level: at warn, only server faults are written", () => {
    const out = capture();
    const log = new RpcLog(
      createLogger({ name: "orders", level: "warn", destination: out.destination }),
      "o.v1.Orders",
      "Get",
    );
    for (const code of [0, 3, 13, 14, 2]) log.write({ code, durationMs: 1, peer: "", requestId: "r" });
    expect(out.lines.map((l) => l.code)).toEqual(["Internal", "Unknown"]);
    expect(out.lines.every((l) => l.level === 50)).toBe(true);
  });
});
