import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * `pnpm new-service` in a temporary copy of the repository (its files, a fresh install, its own git
 * history): the new service must pass its own test, the contract checks, and the compose and
 * Kubernetes checks, with no edits.
 */
const repo = join(dirname(fileURLToPath(import.meta.url)), "../..");
const run = promisify(execFile);
let copy: string;

async function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout, stderr } = await run(cmd, args, {
      cwd: copy,
      env: { ...process.env, ...env },
      maxBuffer: 32 * 1024 * 1024,
    });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

beforeAll(async () => {
  copy = mkdtempSync(join(tmpdir(), "dispatch-new-service-"));
  const { stdout } = await run("git", ["ls-files", "-co", "--exclude-standard", "-z"], { cwd: repo });
  for (const f of stdout.split("\0").filter(Boolean)) {
    if (existsSync(join(repo, f))) cpSync(join(repo, f), join(copy, f), { recursive: true });
  }
  const git = (...args: string[]) =>
    sh("git", ["-c", "user.email=ci@dispatch", "-c", "user.name=ci", ...args]);
  await git("init", "-q", "-b", "main");
  await git("add", "-A");
  await git("commit", "-qm", "the repository before the new service");
  const install = await sh("pnpm", ["install", "--prefer-offline", "--frozen-lockfile"]);
  expect(install.code, install.out).toBe(0);
}, 300_000);

afterAll(() => {
  if (copy) rmSync(copy, { recursive: true, force: true });
});

describe("pnpm new-service", () => {
  it("refuses a name it cannot use, saying why", async () => {
    const bad = await sh("pnpm", ["-s", "new-service", "Bad_Name"]);
    expect(bad.code).not.toBe(0);
    expect(bad.out).toContain('"Bad_Name" is not a service name: use one lowercase word');
    const taken = await sh("pnpm", ["-s", "new-service", "orders"]);
    expect(taken.out).toContain("services/orders already exists");
    const none = await sh("pnpm", ["-s", "new-service"]);
    expect(none.out).toContain("usage: pnpm new-service <name>");
  });

  it("scaffolds a service that passes its test and every contract, compose and Kubernetes check", async () => {
    const made = await sh("pnpm", ["-s", "new-service", "ratings"]);
    expect(made.code, made.out).toBe(0);
    for (const f of [
      "proto/dispatch/ratings/v1/ratings.proto",
      "gen/dispatch/ratings/v1/ratings_pb.ts",
      "services/ratings/src/main.ts",
      "services/ratings/src/config.ts",
      "services/ratings/src/domain/items.ts",
      "services/ratings/src/store/schema.ts",
      "services/ratings/src/rpc.ts",
      "services/ratings/migrations/meta/_journal.json",
      "services/ratings/test/ratings.spec.ts",
      "services/ratings/Dockerfile",
      "deploy/k8s/base/ratings/deployment.yaml",
      "deploy/k8s/base/ratings/migrate-job.yaml",
    ]) {
      expect(existsSync(join(copy, f)), f).toBe(true);
    }
    expect(readFileSync(join(copy, "docker-compose.yml"), "utf8")).toContain(
      "dockerfile: services/ratings/Dockerfile",
    );
    expect(readFileSync(join(copy, "deploy/compose/postgres-init.sql"), "utf8")).toContain(
      "CREATE DATABASE ratings;",
    );

    const test = await sh("pnpm", ["-s", "vitest", "run", "services/ratings"]);
    expect(test.code, test.out).toBe(0);
    expect(test.out).toMatch(/2 passed/);

    const contracts = await sh("pnpm", ["-s", "contracts:check"]);
    expect(contracts.code, contracts.out).toBe(0);
    expect(contracts.out).toContain("contracts ok");

    const deploy = await sh("pnpm", [
      "-s",
      "vitest",
      "run",
      "deploy/test/compose.spec.ts",
      "deploy/test/k8s.spec.ts",
    ]);
    expect(deploy.code, deploy.out).toBe(0);

    const bundle = await sh("node", ["packages/build/src/bundle.ts", "ratings"]);
    expect(bundle.code, bundle.out).toBe(0);
  }, 300_000);
});
