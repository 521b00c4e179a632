import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeviceTarget } from "../src/domain/push.ts";
import { ApnsProvider } from "../src/providers/apns.ts";
import { FcmProvider } from "../src/providers/fcm.ts";
import { startFakePush } from "./fake-push-servers.ts";

let fake: Awaited<ReturnType<typeof startFakePush>>;
beforeAll(async () => {
  fake = await startFakePush();
});
afterAll(() => fake?.close());

const message = { title: "On its way", body: "Your order is out for delivery.", data: { order_id: "o1" } };
const devices = (platform: "ios" | "android", tokens: string[]): DeviceTarget[] =>
  tokens.map((t, i) => ({ deviceId: `d${i}`, platform, pushToken: t }));

describe("FCM HTTP v1 adapter", () => {
  it("authenticates with a service-account token exchange, sends in batches of 500, and classifies failures", async () => {
    const fcm = new FcmProvider(fake.fcm);
    const tokens = Array.from({ length: 1100 }, (_, i) => `tok-${i}`);
    const outcomes = await fcm.send(devices("android", [...tokens, "dead-1", "busy-1"]), message);
    expect(outcomes.slice(0, 1100).every((o) => o.kind === "delivered")).toBe(true);
    expect(outcomes[1100]?.kind).toBe("invalid_token");
    expect(outcomes[1101]?.kind).toBe("transient");
    expect(fake.seen.fcm.filter((m) => m.token.startsWith("tok-"))).toHaveLength(1100);
    expect(fake.seen.fcm[0]?.title).toBe("On its way");
    // One exchange, cached across batches and calls.
    await fcm.send(devices("android", ["busy-1"]), message);
    expect(fake.seen.tokenExchanges).toBe(1);
    expect(fake.seen.rejected).toEqual([]);
  });
});

describe("APNs adapter", () => {
  it("sends over one pooled HTTP/2 connection with a team JWT, and classifies failures", async () => {
    const apns = new ApnsProvider(fake.apns);
    const before = fake.seen.apnsSessions;
    const outcomes = await apns.send(devices("ios", ["a1", "a2", "a3", "dead-2", "busy-2"]), message);
    expect(outcomes.map((o) => o.kind)).toEqual([
      "delivered",
      "delivered",
      "delivered",
      "invalid_token",
      "transient",
    ]);
    expect((await apns.send(devices("ios", ["busy-2", "a4"]), message)).map((o) => o.kind)).toEqual([
      "delivered",
      "delivered",
    ]);
    expect(fake.seen.apnsSessions - before).toBe(1);
    expect(fake.seen.apns.map((m) => m.token).sort()).toEqual(["a1", "a2", "a3", "a4", "busy-2"]);
    await apns.close();
  });
});
