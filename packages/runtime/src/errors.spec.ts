import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { DispatchError, toWireStatus } from "./errors.ts";

describe("toWireStatus", () => {
  it("passes a declared infrastructure status through the cause chain, and hides everything else", () => {
    const lost = Object.assign(new Error("connect ECONNREFUSED 10.0.0.7:5432"), {
      grpcCode: Code.Unavailable,
    });
    const wrapped = new Error("Failed query: select 1", { cause: lost });
    const s = toWireStatus(wrapped);
    expect(s.code).toBe(Code.Unavailable);
    expect(s.message).not.toContain("10.0.0.7");
    expect(s.unexpected).toBe(false);

    expect(toWireStatus(Object.assign(new Error("x"), { grpcCode: Code.PermissionDenied })).code).toBe(
      Code.Internal,
    );
    expect(toWireStatus(new ConnectError("down", Code.Unavailable)).code).toBe(Code.Unavailable);
    expect(toWireStatus(new ConnectError("bad arg downstream", Code.InvalidArgument)).code).toBe(
      Code.Internal,
    );
    expect(toWireStatus(new DispatchError(Code.NotFound, "nope")).code).toBe(Code.NotFound);
    expect(toWireStatus(new Error("boom"))).toMatchObject({
      code: Code.Internal,
      message: "internal error",
      unexpected: true,
    });
  });
});
