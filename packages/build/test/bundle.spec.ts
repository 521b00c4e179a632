import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, describe, expect, it } from "vitest";
import { builtinsViaRequire, bundleOptions } from "../src/bundle.ts";

describe("bundles import Node's own modules the CommonJS way", () => {
  const dir = mkdtempSync(join(tmpdir(), "dispatch-bundle-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function bundleAndRun(source: string, plugins = [builtinsViaRequire]) {
    writeFileSync(join(dir, "entry.mjs"), source);
    const outfile = join(dir, `out-${plugins.length}.mjs`);
    await build({ ...bundleOptions, entryPoints: [join(dir, "entry.mjs")], outfile, plugins });
    const out = execFileSync(process.execPath, [outfile], { encoding: "utf8" });
    return { code: readFileSync(outfile, "utf8"), result: JSON.parse(out) as Record<string, unknown> };
  }

  const probe = `
    import { createServer, STATUS_CODES } from "node:http";
    import * as fs from "fs";
    import crypto from "node:crypto";
    import { AsyncLocalStorage } from "node:async_hooks";
    const { setTimeout: sleep } = await import("node:timers/promises");
    await sleep(1);
    const als = new AsyncLocalStorage();
    console.log(JSON.stringify({
      createServer: typeof createServer,
      status404: STATUS_CODES[404],
      readFile: typeof fs.promises.readFile,
      uuid: crypto.randomUUID().length,
      als: als.run(7, () => als.getStore()),
      undici: process.moduleLoadList.some((m) => m.includes("undici")),
    }));
  `;

  it("named, namespace, default and dynamic imports work, and http's lazy WebSocket getters (undici) stay unloaded", async () => {
    const { code, result } = await bundleAndRun(probe);
    expect(result).toEqual({
      createServer: "function",
      status404: "Not Found",
      readFile: "function",
      uuid: 36,
      als: 7,
      undici: false,
    });
    expect(code).not.toMatch(/import[^;]*from\s*["'](node:)?(http|fs|crypto|async_hooks)["']/);
  });

  it("without it, the same program loads undici at start (the cost it removes)", async () => {
    const { result } = await bundleAndRun(probe, []);
    expect(result.undici).toBe(true);
  });
});
