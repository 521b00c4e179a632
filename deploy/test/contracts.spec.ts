import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

/**
 * `pnpm contracts:check` must stop a change that breaks callers. In a temporary copy of the contracts
 * (its own git history), a field is renumbered — old clients would send it under the wrong number —
 * and the check must fail with buf's message; adding a field must pass.
 */
const repo = join(dirname(fileURLToPath(import.meta.url)), "../..");
const run = promisify(execFile);
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const ORDERS = "proto/dispatch/orders/v1/orders.proto";

async function copyWith(change: (proto: string) => string) {
  const dir = mkdtempSync(join(tmpdir(), "dispatch-contracts-"));
  dirs.push(dir);
  for (const p of ["proto", "gen", "scripts", "buf.yaml", "buf.gen.yaml", "package.json"]) {
    cpSync(join(repo, p), join(dir, p), { recursive: true, filter: (s) => !s.includes("node_modules") });
  }
  symlinkSync(join(repo, "node_modules"), join(dir, "node_modules"));
  symlinkSync(join(repo, "gen/node_modules"), join(dir, "gen/node_modules"));
  const git = (...args: string[]) =>
    run("git", ["-c", "user.email=ci@dispatch", "-c", "user.name=ci", ...args], { cwd: dir });
  await git("init", "-q", "-b", "main");
  await git("add", "-A");
  await git("commit", "-qm", "contracts before the change");
  writeFileSync(join(dir, ORDERS), change(readFileSync(join(dir, ORDERS), "utf8")));
  await git("commit", "-qam", "the change");
  return dir;
}

async function check(dir: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run("bash", ["scripts/contracts-check.sh"], { cwd: dir });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, output: e.stdout + e.stderr };
  }
}

describe("pnpm contracts:check", () => {
  it("fails a renumbered field with buf breaking's message", async () => {
    const dir = await copyWith((p) => {
      expect(p).toContain("  int32 quantity = 3;");
      return p.replace("  int32 quantity = 3;", "  int32 quantity = 15;");
    });
    const { code, output } = await check(dir);
    expect(code).not.toBe(0);
    expect(output).toContain("== buf breaking");
    expect(output).toMatch(
      /orders\.proto:\d+:\d+:.*"3".*"quantity"|Previously present field "3" with name "quantity"/,
    );
    expect(output).not.toContain("contracts ok");
  });

  it("passes an added field (after regenerating gen/)", async () => {
    const dir = await copyWith((p) =>
      p.replace(
        "  int32 quantity = 3;",
        "  int32 quantity = 3;\n  // Free text for the kitchen.\n  string note = 9;",
      ),
    );
    await run("node_modules/.bin/buf", ["generate"], { cwd: dir });
    const { code, output } = await check(dir);
    expect(output).toContain("contracts ok");
    expect(code).toBe(0);
  });
});
