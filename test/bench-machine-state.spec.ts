import { describe, expect, it } from "vitest";
import { describeMachineState, machineState } from "../bench/machine-state.ts";

describe("bench/machine-state.ts: the machine line's probe", () => {
  it("measures an idle loop's gaps and memory touched again, in a child process", async () => {
    const s = await machineState(1);
    expect(s.seconds).toBe(1);
    expect(Number.isInteger(s.loopGapsOver3Ms)).toBe(true);
    // ~1,000 runs of a 1 ms timer in a second: at most a few hundred of its gaps can be over 3 ms.
    expect(s.loopGapsOver3Ms).toBeGreaterThanOrEqual(0);
    expect(s.loopGapsOver3Ms).toBeLessThan(334);
    // a 1 ms timer never comes back sooner than 1 ms (node rounds its delay down to whole ms: 0.9 allows that)
    expect(s.longestGapMs).toBeGreaterThan(0.9);
    // 8,192 reads of a 32 MB array: well under a ms a page, and never nothing
    for (const us of [s.retouchUsPerPage, s.hotUsPerPage]) {
      expect(us).toBeGreaterThan(0);
      expect(us).toBeLessThan(1000);
    }
    expect(describeMachineState(s)).toMatch(
      /^idle event loop \d+ gaps over 3 ms in 1 s \(longest \d+\.\d ms\); memory touched again after 300 ms idle \d+\.\d\d µs a 4 kB page \(back to back \d+\.\d\d\)$/,
    );
  });
});
