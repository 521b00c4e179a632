import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { monotonicUs, summarise } from "../bench/profile.ts";

const dir = mkdtempSync(join(tmpdir(), "dispatch-profile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const frame = (functionName: string, url = "") => ({ functionName, url, lineNumber: 0 });

/**
 * A process that spent its first second starting up (`evaluate`), then 2 s serving calls (`onCall`),
 * then a second idle: one sample every 100 ms, from 1,000,000 µs on the monotonic clock.
 */
function profile(): string {
  const nodes = [
    { id: 1, callFrame: frame("(root)"), children: [2, 3, 4] },
    { id: 2, callFrame: frame("evaluate", "node:internal/modules/esm/module_job") },
    { id: 3, callFrame: frame("onCall", "file:///srv/services/gateway/src/edge.ts") },
    { id: 4, callFrame: frame("(idle)") },
  ];
  const samples = [...Array(10).fill(2), ...Array(20).fill(3), ...Array(10).fill(4)];
  const file = join(dir, "p.cpuprofile");
  writeFileSync(
    file,
    JSON.stringify({
      nodes,
      startTime: 1_000_000,
      endTime: 5_000_000,
      samples,
      timeDeltas: samples.map(() => 100_000),
    }),
  );
  return file;
}

describe("bench/profile.ts summarise", () => {
  it("counts every sample without a window", () => {
    const text = summarise(profile());
    expect(text).toMatch(/^total 4\.00 s sampled, 3\.00 s running/);
    expect(text).toMatch(/25\.0 %\s+evaluate/);
    expect(text).toMatch(/50\.0 %\s+onCall/);
  });

  it("counts only the samples inside the window", () => {
    // Samples land at 1.1 s, 1.2 s, …: the load's are 2.1-4.0 s.
    const text = summarise(profile(), 25, { fromUs: 2_050_000, toUs: 4_000_000 });
    expect(text).toMatch(
      /^total 2\.00 s sampled between 2050000 and 4000000 µs .*\(1\.9 s\), 2\.00 s running/,
    );
    expect(text).toMatch(/100\.0 %\s+onCall/);
    expect(text).not.toContain("evaluate");
    expect(text).not.toContain("(idle)");
  });

  it("says so when no sample is inside the window", () => {
    expect(summarise(profile(), 25, { fromUs: 9_000_000, toUs: 9_500_000 })).toBe(
      "no samples inside the window",
    );
  });

  it("takes windows on the clock node's profiles use, in another process too", () => {
    const out = join(dir, "child");
    const before = monotonicUs();
    execFileSync(process.execPath, [
      "--cpu-prof",
      "--cpu-prof-dir",
      out,
      "-e",
      "for (let i = 0; i < 1e6; i++);",
    ]);
    const after = monotonicUs();
    const [name] = readdirSync(out);
    const p = JSON.parse(readFileSync(join(out, name!), "utf8")) as { startTime: number; endTime: number };
    expect(p.startTime).toBeGreaterThan(before);
    expect(p.endTime).toBeGreaterThan(p.startTime);
    expect(p.endTime).toBeLessThan(after);
  });
});
