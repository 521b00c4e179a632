import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A test process that starts catalog and prints its pid, then ends without stopping it: by exiting, or
 * by waiting to be killed (as vitest tears down a worker whose test timed out). Returns catalog's pid.
 */
async function orphan(end: "exit" | "killed"): Promise<number> {
  const script = `
    import { startServiceProcess } from "./packages/testing/src/service-process.ts";
    const proc = await startServiceProcess("catalog");
    console.log(proc.child.pid);
    ${end === "exit" ? "process.exit(0);" : "setInterval(() => {}, 1000);"}`;
  const parent = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  parent.stdout.on("data", (d) => (out += d));
  const exited = once(parent, "exit");
  if (end === "killed") {
    while (!out.includes("\n") && parent.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    parent.kill("SIGKILL");
  }
  await exited;
  const pid = Number(out.trim());
  expect(pid).toBeGreaterThan(0);
  return pid;
}

async function gone(pid: number): Promise<boolean> {
  try {
    const until = Date.now() + 10_000;
    while (alive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    return !alive(pid);
  } finally {
    if (alive(pid)) process.kill(pid, "SIGKILL");
  }
}

describe("startServiceProcess", () => {
  it("does not leave a service running when the test process exits without stopping it", async () => {
    expect(await gone(await orphan("exit"))).toBe(true);
  });

  it("does not leave a service running when the test process is killed", async () => {
    expect(await gone(await orphan("killed"))).toBe(true);
  });
});
