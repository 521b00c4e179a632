import { execFileSync } from "node:child_process";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.ts";

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
