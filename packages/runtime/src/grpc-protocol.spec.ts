import { describe, expect, it } from "vitest";
import {
  encodeGrpcMessage,
  frame,
  MessageReader,
  MessageTooLargeError,
  parseTimeout,
} from "./grpc-protocol.ts";

describe("grpc-timeout", () => {
  it("parses every unit and rejects malformed values", () => {
    expect(parseTimeout("2H")).toBe(7_200_000);
    expect(parseTimeout("3M")).toBe(180_000);
    expect(parseTimeout("5S")).toBe(5000);
    expect(parseTimeout("250m")).toBe(250);
    expect(parseTimeout("1500u")).toBe(1.5);
    expect(parseTimeout("2000000n")).toBe(2);
    expect(parseTimeout("123456789m")).toBeUndefined();
    expect(parseTimeout("10x")).toBeUndefined();
    expect(parseTimeout("")).toBeUndefined();
  });
});

describe("message framing", () => {
  it("reassembles messages split across chunks and splits packed ones", () => {
    const a = frame(Buffer.from("hello"));
    const b = frame(Buffer.from("world!"));
    const all = Buffer.concat([a, b]);
    const r = new MessageReader(1024);
    expect(r.push(all.subarray(0, 3))).toEqual([]);
    expect(r.push(all.subarray(3, 12)).map((m) => Buffer.from(m.data).toString())).toEqual(["hello"]);
    expect(r.pending).toBe(true);
    expect(r.push(all.subarray(12)).map((m) => Buffer.from(m.data).toString())).toEqual(["world!"]);
    expect(r.pending).toBe(false);
    expect(new MessageReader(1024).push(all).map((m) => Buffer.from(m.data).toString())).toEqual([
      "hello",
      "world!",
    ]);
  });

  it("refuses a declared length over the limit before buffering the body", () => {
    const r = new MessageReader(10);
    expect(() => r.push(Buffer.from([0, 0, 0, 1, 0]))).toThrow(MessageTooLargeError);
  });
});

describe("grpc-message encoding", () => {
  it("percent-encodes only what the spec requires", () => {
    expect(encodeGrpcMessage("plain text")).toBe("plain text");
    expect(encodeGrpcMessage("100% café\n")).toBe("100%25 caf%C3%A9%0A");
  });
});
