import pino from "pino";
import { describe, expect, it } from "vitest";
import { Poller } from "./poller.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("Poller", () => {
  it("repeats at once while there is work, idles when there is none, survives failures, and stops", async () => {
    const work = [3, 2, 0];
    let rounds = 0;
    const poller = new Poller(
      "test",
      async () => {
        rounds++;
        if (rounds === 1) throw new Error("transient");
        return work.shift() ?? 0;
      },
      pino({ level: "silent" }),
      200,
    );
    poller.start();
    await sleep(100);
    expect(rounds).toBe(1); // failed, now idling
    await sleep(200);
    expect(rounds).toBe(4); // 3, 2 and 0 back to back, then idle again
    poller.notify();
    await sleep(20);
    expect(rounds).toBe(5); // woken early
    await poller.stop();
    await sleep(300);
    expect(rounds).toBe(5);
  });
});
