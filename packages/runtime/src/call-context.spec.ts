import { describe, expect, it, vi } from "vitest";

const UUID_V8 = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("newRequestId", () => {
  it("makes UUID-shaped ids (version 8, variant 10) that do not repeat", async () => {
    const { newRequestId } = await import("./call-context.ts");
    const ids = Array.from({ length: 20_000 }, () => newRequestId());
    for (const id of ids.slice(0, 100)) expect(id).toMatch(UUID_V8);
    expect(new Set(ids).size).toBe(ids.length);
    // the counter part runs on from one id to the next
    const last = (id: string) => Number.parseInt(id.slice(24), 16);
    expect(last(ids[1]!) - last(ids[0]!)).toBe(1);
  });

  it("draws a new random prefix for each process (each evaluation of the module)", async () => {
    const a = (await import("./call-context.ts")).newRequestId();
    vi.resetModules();
    const b = (await import("./call-context.ts")).newRequestId();
    expect(a).toMatch(UUID_V8);
    expect(b).toMatch(UUID_V8);
    expect(a.slice(0, 24)).not.toBe(b.slice(0, 24));
  });
});
