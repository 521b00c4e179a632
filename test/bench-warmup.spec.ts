import { describe, expect, it } from "vitest";
import { type Point, withWarmupErrors } from "../bench/mobile.ts";

const point = (errors: number, errorCodes?: string): Point => ({
  protocol: "gRPC, h2c",
  targetRps: 500,
  achievedRps: 500,
  requests: 5000,
  errors,
  errorCodes,
  p50Ms: 1,
  p90Ms: 2,
  p99Ms: 9,
});

describe("the active-orders warm-up's errors", () => {
  it("are held against the fixed run after it, their codes named", () => {
    const fixed = withWarmupErrors(point(1, "UNAVAILABLE 1"), [
      point(0),
      point(3, "RESOURCE_EXHAUSTED 3"),
      point(2),
    ]);
    expect(fixed.errors).toBe(6);
    expect(fixed.errorCodes).toBe("UNAVAILABLE 1; warm-up: RESOURCE_EXHAUSTED 3; 2 errors");
    expect(fixed.p99Ms).toBe(9);
  });

  it("leave a fixed run as it is when the warm-up had none", () => {
    const measured = point(0);
    expect(withWarmupErrors(measured, [point(0), point(0)])).toBe(measured);
  });
});
