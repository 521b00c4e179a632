#!/usr/bin/env node
/**
 * Bundles services for their images: `node packages/build/src/bundle.ts [service...]` (default: every
 * service) writes services/<svc>/dist/main.mjs and dist/health-probe.mjs, tree-shaken and minified, with
 * nothing left to resolve at run time but Node's own modules. Runs on Node 24 without a build step.
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type BuildOptions, build, type Metafile, type Plugin } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");

/** Loaded lazily and only where the image never goes (embedded PGlite, the terminal pretty-printer). */
const notInImages = ["@electric-sql/pglite", "drizzle-orm/pglite", "drizzle-orm/pglite/*", "pino-pretty"];

export interface BundleReport {
  service: string;
  files: { path: string; bytes: number }[];
  ms: number;
}

function serviceEntry(service: string): string {
  const entry = join(root, "services", service, "src/main.ts");
  if (!existsSync(entry)) throw new Error(`no such service: ${service} (expected ${relative(root, entry)})`);
  return entry;
}

/**
 * Node's own modules, imported the CommonJS way. An ES `import` of a builtin makes Node build an ES
 * facade that reads every export, so each lazy getter runs at start-up: `node:http`'s
 * WebSocket/MessageEvent/CloseEvent load undici (~45-60 ms on this machine; nodejs/node#59686), and
 * tls, crypto and fs have lazy getters of their own. Here each such import becomes a CommonJS module
 * whose exports esbuild reads only when used.
 */
export const builtinsViaRequire: Plugin = {
  name: "builtins-via-require",
  setup(b) {
    b.onResolve({ filter: /^[a-z_][a-z0-9_/:]*$/ }, (args) => {
      if (args.kind !== "import-statement" && args.kind !== "dynamic-import") return undefined;
      if (!isBuiltin(args.path)) return undefined;
      const name = args.path.startsWith("node:") ? args.path : `node:${args.path}`;
      return { path: name, namespace: "builtin-via-require" };
    });
    b.onLoad({ filter: /.*/, namespace: "builtin-via-require" }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: "js",
    }));
  },
};

export const bundleOptions: BuildOptions = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node24",
  treeShaking: true,
  legalComments: "none",
  // CommonJS dependencies call require(); give the ESM bundle one.
  banner: { js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" },
  logLevel: "warning",
  absWorkingDir: root,
};

/**
 * One entry bundled as the services are, for tests of what a bundle does that the sources run by tsx do
 * not (node treats code inside node_modules differently: some deprecation warnings, for one).
 */
export async function bundleEntry(entry: string, outfile: string): Promise<void> {
  await build({ ...bundleOptions, entryPoints: [entry], outfile, plugins: [builtinsViaRequire] });
}

export async function bundleService(service: string): Promise<BundleReport> {
  const entry = serviceEntry(service);
  const outdir = join(root, "services", service, "dist");
  const started = performance.now();
  const result = await build({
    ...bundleOptions,
    metafile: true,
    entryPoints: {
      main: entry,
      "health-probe": join(root, "packages/runtime/src/health-probe.ts"),
    },
    outdir,
    outExtension: { ".js": ".mjs" },
    // BUNDLE_MINIFY=0: readable function names, for CPU profiles of the bundles (bench/profile.ts).
    minify: process.env.BUNDLE_MINIFY !== "0",
    external: notInImages,
    plugins: [builtinsViaRequire],
  });
  const files = Object.entries(result.metafile.outputs).map(([path, out]) => ({
    path: relative(root, join(root, path)),
    bytes: out.bytes,
  }));
  return { service, files, ms: Math.round(performance.now() - started) };
}

/**
 * PGlite stays outside the bundle (it loads its WebAssembly and data files from beside its own module),
 * and a bundle written elsewhere than the package that depends on it could not find it by name: the
 * import is rewritten to the file it resolves to from the importing source, as `node` would resolve it
 * there.
 */
const embeddedFromInstall: Plugin = {
  name: "embedded-from-install",
  setup(b) {
    b.onResolve({ filter: /^@electric-sql\/pglite(\/.*)?$/ }, async (args) => {
      if (args.pluginData === "embedded-from-install") return undefined;
      const found = await b.resolve(args.path, {
        kind: args.kind,
        resolveDir: args.resolveDir,
        pluginData: "embedded-from-install",
      });
      if (found.errors.length > 0) return { errors: found.errors };
      return { path: pathToFileURL(found.path).href, external: true };
    });
  },
};

/**
 * Bundles services for `pnpm start` (scripts/start.ts), each into services/<svc>/.start/main.mjs (beside
 * dist/, so `../migrations` still names the service's migrations), and returns each one's path: the
 * images' bundle, but readable (not minified) and with embedded PGlite, which the images leave out, loaded
 * from this checkout's install. One file loads in a fraction of the time the same sources take through tsx
 * (docs/BENCHMARKS.md, "Start-up and memory"). A bundle is kept while every file it was built from
 * (sources, dependencies, the lockfile, this builder) is still there and unchanged since the build began.
 * The stale ones are built in one esbuild run with an entry point each: the services share most of their
 * modules, which one run parses once (six bundles, byte for byte the same files: 0.5-0.75 s against
 * 1.2-1.4 s for six runs at once; docs/BENCHMARKS-ROUNDS.md, "Thirteenth round").
 */
export async function bundleForLocalRun(
  services: readonly string[],
): Promise<Map<string, { path: string; built: boolean }>> {
  const bundles = new Map(
    services.map((s) => [s, { path: join(root, "services", s, ".start", "main.mjs"), built: false }]),
  );
  const stale = services.filter((s) => {
    const { path } = bundles.get(s)!;
    return !(existsSync(path) && upToDate(inputsFileOf(path)));
  });
  if (stale.length === 0) return bundles;
  const startedAt = Date.now();
  const result = await build({
    ...bundleOptions,
    metafile: true,
    entryPoints: Object.fromEntries(stale.map((s) => [`${s}/.start/main`, serviceEntry(s)])),
    outdir: join(root, "services"),
    outExtension: { ".js": ".mjs" },
    minify: false,
    plugins: [builtinsViaRequire, embeddedFromInstall],
    // The terminal pretty-printer is required by name at run time (packages/runtime/src/logger.ts);
    // scripts/start.ts points NODE_PATH at its install.
    external: ["pino-pretty"],
  });
  for (const s of stale) {
    const bundle = bundles.get(s)!;
    const inputs = [
      ...reachable(result.metafile.inputs, relative(root, serviceEntry(s))).map((p) => join(root, p)),
      join(root, "pnpm-lock.yaml"),
      fileURLToPath(import.meta.url),
    ];
    // Compared with the time the build began: a file saved while it ran may not be in it.
    writeFileSync(inputsFileOf(bundle.path), JSON.stringify({ startedAt, inputs }));
    bundle.built = true;
  }
  return bundles;
}

function inputsFileOf(bundle: string): string {
  return join(dirname(bundle), "inputs.json");
}

/**
 * The files one entry point's bundle was built from: the build's inputs reachable from it by imports (one
 * run's metafile lists every entry point's inputs together). Modules of a plugin's namespace, listed as
 * "namespace:path", are not files, nor are esbuild's own ("<runtime>").
 */
function reachable(inputs: Metafile["inputs"], entry: string): string[] {
  const seen = new Set<string>([entry]);
  const queue = [entry];
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    for (const { path } of inputs[file]?.imports ?? []) {
      if (seen.has(path) || !(path in inputs)) continue;
      seen.add(path);
      queue.push(path);
    }
  }
  return [...seen].filter((p) => !p.startsWith("<") && !/^[\w-]+:/.test(p));
}

function upToDate(inputsFile: string): boolean {
  try {
    const { startedAt, inputs } = JSON.parse(readFileSync(inputsFile, "utf8")) as {
      startedAt: number;
      inputs: string[];
    };
    return inputs.every((p) => statSync(p).mtimeMs < startedAt);
  } catch {
    return false; // no bundle yet, or an input gone
  }
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
