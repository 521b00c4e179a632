import { describe, expect, it } from "vitest";
import { hashesAtOnce, hashPassword, Slots, verifyPassword } from "../src/domain/passwords.ts";

/** A task that runs until `finish` is called, noting how many tasks were running when it started. */
function gate(running: { now: number; peak: number }, order: number[], id: number) {
  let finish!: (ok: boolean) => void;
  const done = new Promise<boolean>((r) => {
    finish = r;
  });
  const task = async () => {
    order.push(id);
    running.now++;
    running.peak = Math.max(running.peak, running.now);
    const ok = await done;
    running.now--;
    if (!ok) throw new Error(`task ${id} failed`);
    return id;
  };
  return { task, finish };
}

describe("password hashes", () => {
  it("run at most `size` at once, the others in arrival order; a failed one frees its place", async () => {
    const slots = new Slots(2);
    const running = { now: 0, peak: 0 };
    const order: number[] = [];
    const gates = [1, 2, 3, 4, 5].map((id) => gate(running, order, id));
    const results = gates.map((g) => slots.run(g.task).catch((e: Error) => e.message));
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual([1, 2]);
    gates[0]!.finish(false); // fails: 3 starts all the same
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual([1, 2, 3]);
    for (const g of gates.slice(1)) g.finish(true);
    expect(await Promise.all(results)).toEqual(["task 1 failed", 2, 3, 4, 5]);
    expect(order).toEqual([1, 2, 3, 4, 5]);
    expect(running.peak).toBe(2);
  });

  it("leave one of libuv's pool threads free, and run one at a time on a pool of one or two", () => {
    expect(hashesAtOnce({ UV_THREADPOOL_SIZE: "2" })).toBe(1);
    expect(hashesAtOnce({ UV_THREADPOOL_SIZE: "1" })).toBe(1);
    expect(hashesAtOnce({ UV_THREADPOOL_SIZE: "8" })).toBe(7);
    expect(hashesAtOnce({})).toBe(3); // libuv's default pool of 4
    // What libuv makes of it: its leading integer, else one thread.
    expect(hashesAtOnce({ UV_THREADPOOL_SIZE: "6 threads" })).toBe(5);
    expect(hashesAtOnce({ UV_THREADPOOL_SIZE: "lots" })).toBe(1);
  });

  it("still hash and verify when many are asked for at once", async () => {
    const passwords = Array.from({ length: 5 }, (_, i) => `password-${i}-long-enough`);
    const hashes = await Promise.all(passwords.map(hashPassword));
    expect(await Promise.all(passwords.map((p, i) => verifyPassword(p, hashes[i]!)))).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    expect(await verifyPassword("password-0-long-enough", hashes[1]!)).toBe(false);
  });
});
