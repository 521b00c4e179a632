import { once } from "node:events";
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { freePort } from "../src/service-process.ts";

describe("freePort", () => {
  it("never hands the same port out twice in a process, and each one can be listened on", async () => {
    // 500 draws from the 12,000 ports it picks among: with repeats allowed, two would match in ~99.99 % of runs.
    const ports: number[] = [];
    for (let i = 0; i < 500; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
    const srv = createServer();
    srv.listen(ports.at(-1), "0.0.0.0");
    await once(srv, "listening");
    srv.close();
    await once(srv, "close");
  });
});
