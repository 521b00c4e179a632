import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// services -> packages -> gen, never upward, and services never import each other.
const root = fileURLToPath(new URL("../../..", import.meta.url));
const packageNames = new Set(readdirSync(join(root, "packages")));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    if (name === "node_modules" || name === ".data") return [];
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|js)$/.test(name) ? [path] : [];
  });
}

function imports(file: string): string[] {
  const src = readFileSync(file, "utf8");
  return [
    ...src.matchAll(/(?:import|export)[^'"]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g),
  ].map((m) => (m[1] ?? m[2])!);
}

/** Which top-level area (and which service) an import from `file` lands in. */
function target(file: string, spec: string): string | undefined {
  if (spec.startsWith("@dispatch/")) {
    const name = spec.split("/")[1]!;
    if (name === "gen") return "gen";
    if (packageNames.has(name)) return `packages/${name}`;
    return `services/${name}`;
  }
  if (!spec.startsWith(".")) return undefined;
  const rel = relative(root, resolve(file, "..", spec)).split("/");
  return rel[0] === "services" || rel[0] === "packages" ? `${rel[0]}/${rel[1]}` : rel[0];
}

describe("dependency direction", () => {
  it("gen imports nothing of ours, packages never import services, services never import each other", () => {
    const violations: string[] = [];
    for (const area of ["gen", "packages", "services"]) {
      for (const file of sourceFiles(join(root, area))) {
        const rel = relative(root, file);
        const parts = rel.split("/");
        const own = area === "gen" ? "gen" : `${parts[0]}/${parts[1]}`;
        for (const spec of imports(file)) {
          const to = target(file, spec);
          if (!to || to === own) continue;
          const bad =
            (area === "gen" && to !== "gen") ||
            (area === "packages" && to.startsWith("services/")) ||
            (area === "services" && to.startsWith("services/"));
          if (bad) violations.push(`${rel} imports ${spec}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });

  it("the check itself sees an upward import", () => {
    expect(target(join(root, "packages/runtime/src/x.ts"), "../../../services/orders/src/main.ts")).toBe(
      "services/orders",
    );
    expect(target(join(root, "services/orders/src/x.ts"), "@dispatch/catalog")).toBe("services/catalog");
  });
});
