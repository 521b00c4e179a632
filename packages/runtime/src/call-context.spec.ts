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

describe("CallScope", () => {
  it("is the call while its handler runs; after, keeps its ids and deadline, and a signal that never aborts", async () => {
    const { CallScope } = await import("./call-context.ts");
    const controller = new AbortController();
    const call = { signal: controller.signal, deadline: 1234, requestId: "r-1", traceSpan: undefined };
    const scope = new CallScope(call);
    expect(scope.signal).toBe(controller.signal);
    expect([scope.deadline, scope.requestId]).toEqual([1234, "r-1"]);
    scope.end(undefined);
    expect(scope.signal).not.toBe(controller.signal);
    expect(scope.signal.aborted).toBe(false);
    expect([scope.deadline, scope.requestId]).toEqual([1234, "r-1"]);
    // The call's own signal aborting later does not reach work that outlived the handler.
    controller.abort(new Error("late"));
    expect(scope.signal.aborted).toBe(false);
  });

  it("keeps the call's signal after the handler when the call was cancelled", async () => {
    const { CallScope } = await import("./call-context.ts");
    const controller = new AbortController();
    const scope = new CallScope({ signal: controller.signal, deadline: undefined, requestId: "r-2" });
    controller.abort(new Error("deadline exceeded"));
    scope.end(controller.signal);
    expect(scope.signal.aborted).toBe(true);
    expect((scope.signal.reason as Error).message).toBe("deadline exceeded");
  });
});
