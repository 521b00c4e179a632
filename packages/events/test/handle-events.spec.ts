import { create } from "@bufbuild/protobuf";
import { HandleEventsRequestSchema } from "@dispatch/gen/dispatch/events/v1/events_pb.ts";
import { type CallContext, CallScope, currentCall, type HandlerContext, runInCall } from "@dispatch/runtime";
import { describe, expect, it } from "vitest";
import { handleEventsWith } from "../src/index.ts";

describe("handleEventsWith", () => {
  it("handles each event inside the incoming call: its signal, deadline and request id", async () => {
    const seen: (CallContext | undefined)[] = [];
    const handle = handleEventsWith(async () => {
      seen.push(currentCall());
      return { duplicate: false };
    });
    const controller = new AbortController();
    // What the server runs a handler in: its signal is a getter, as on every call the server makes.
    const call = new CallScope({
      signal: controller.signal,
      deadline: Date.now() + 5000,
      requestId: "req-events",
    });
    const req = create(HandleEventsRequestSchema, {
      events: [
        { id: "e-1", source: "orders", subject: "a" },
        { id: "e-2", source: "orders", subject: "b" },
      ],
    });
    const res = await runInCall(call, () => handle(req, {} as HandlerContext));
    expect(res.results?.map((r) => r.code)).toEqual([0, 0]);
    expect(seen).toHaveLength(2);
    for (const c of seen) {
      // An outgoing call made while handling the event reads these (DispatchTransport).
      expect(c?.signal).toBe(controller.signal);
      expect(c?.deadline).toBe(call.deadline);
      expect(c?.requestId).toBe("req-events");
    }
  });
});
