#!/usr/bin/env node
/**
 * Bundles services for their images: `node packages/build/src/bundle.ts [service...]` (default: every
 * service) writes services/<svc>/dist/main.mjs and dist/health-probe.mjs, tree-shaken and minified, with
 * nothing left to resolve at run time but Node's own modules. Runs on Node 24 without a build step.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");

/** Loaded lazily and only where the image never goes (embedded PGlite, the terminal pretty-printer). */
const notInImages = ["@electric-sql/pglite", "drizzle-orm/pglite", "drizzle-orm/pglite/*", "pino-pretty"];

export interface BundleReport {
  service: string;
  files: { path: string; bytes: number }[];
  ms: number;
}

export async function bundleService(service: string): Promise<BundleReport> {
  const dir = join(root, "services", service);
  const entry = join(dir, "src/main.ts");
  if (!existsSync(entry)) throw new Error(`no such service: ${service} (expected ${relative(root, entry)})`);
  const outdir = join(dir, "dist");
  const started = performance.now();
  const result = await build({
    entryPoints: {
      main: entry,
      "health-probe": join(root, "packages/runtime/src/health-probe.ts"),
    },
    outdir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node24",
    // BUNDLE_MINIFY=0: readable function names, for CPU profiles of the bundles (bench/profile.ts).
    minify: process.env.BUNDLE_MINIFY !== "0",
    treeShaking: true,
    legalComments: "none",
    external: notInImages,
    // CommonJS dependencies call require(); give the ESM bundle one.
    banner: { js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" },
    metafile: true,
    logLevel: "warning",
  });
  const files = Object.entries(result.metafile.outputs).map(([path, out]) => ({
    path: relative(root, join(root, path)),
    bytes: out.bytes,
  }));
  return { service, files, ms: Math.round(performance.now() - started) };
}

export function allServices(): string[] {
  return readdirSync(join(root, "services"))
    .filter((s) => statSync(join(root, "services", s)).isDirectory())
    .filter((s) => existsSync(join(root, "services", s, "src/main.ts")))
    .sort();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const services = process.argv.length > 2 ? process.argv.slice(2) : allServices();
  for (const s of services) {
    const r = await bundleService(s);
    const total = r.files.reduce((n, f) => n + f.bytes, 0);
    console.log(
      `${s}: ${(total / 1024).toFixed(0)} KiB in ${r.ms} ms (${r.files.map((f) => f.path).join(", ")})`,
    );
  }
}
