import { describe, expect, it } from "vitest";
import { signWebhook, verifyWebhook } from "./signature.ts";

const body = '{"id":"evt_1","type":"payment_intent.succeeded"}';

describe("webhook signatures", () => {
  it("accepts its own signature over the exact body", () => {
    expect(verifyWebhook("s3cret", signWebhook("s3cret", body, 1000), body, { now: 1010 })).toEqual({
      ok: true,
      timestamp: 1000,
    });
  });

  it("rejects a changed body, a wrong secret, a stale timestamp and malformed headers", () => {
    const header = signWebhook("s3cret", body, 1000);
    expect(verifyWebhook("s3cret", header, `${body} `, { now: 1000 })).toMatchObject({
      ok: false,
      reason: "signature does not match",
    });
    expect(verifyWebhook("other", header, body, { now: 1000 })).toMatchObject({ ok: false });
    expect(verifyWebhook("s3cret", header, body, { now: 1000 + 301 })).toMatchObject({
      reason: "timestamp outside the tolerance",
    });
    expect(verifyWebhook("s3cret", undefined, body)).toMatchObject({ reason: "missing signature header" });
    expect(verifyWebhook("s3cret", "v1=abc", body)).toMatchObject({
      reason: "signature header has no timestamp",
    });
    expect(verifyWebhook("s3cret", "t=1000", body, { now: 1000 })).toMatchObject({
      reason: "signature header has no v1 signature",
    });
  });

  it("accepts any matching v1 entry, so secrets can rotate", () => {
    const [t, v1] = signWebhook("new", body, 1000).split(",");
    expect(verifyWebhook("new", `${t},v1=${"0".repeat(64)},${v1}`, body, { now: 1000 }).ok).toBe(true);
  });
});
