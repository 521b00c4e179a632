/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): self time by function and by package, the two views
 * that say where a hop's time goes. `tsx bench/profile.ts <file.cpuprofile> [top] [fromUs toUs]`.
 */
import { existsSync, readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  /** Microseconds on the machine's monotonic clock: `process.hrtime` in any process reads the same one. */
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A stretch of the monotonic clock in µs, e.g. from `monotonicUs()` before and after a load. */
export interface Window {
  fromUs: number;
  toUs: number;
}

/** Now on the clock a profile's timestamps use (CLOCK_MONOTONIC, µs). */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * A bundle (esbuild, unminified) marks where each module starts with a comment holding its path; this
 * maps a line of the bundle back to that module, so a bundled service's time can be told by package.
 */
function bundleModules(url: string): ((line: number) => string) | undefined {
  const path = url.replace(/^file:\/\//, "");
  if (!path.endsWith(".mjs") || !existsSync(path)) return undefined;
  const starts: { line: number; module: string }[] = [];
  readFileSync(path, "utf8")
    .split("\n")
    .forEach((text, i) => {
      const m = /^\/\/ ((?:node_modules|packages|services|gen)\/\S+\.[cm]?[jt]s)$/.exec(text);
      if (m) starts.push({ line: i, module: m[1]! });
    });
  if (starts.length === 0) return undefined;
  return (line) => {
    let lo = 0;
    let hi = starts.length - 1;
    if (line < starts[0]!.line) return "(bundle prelude)";
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]!.line <= line) lo = mid;
      else hi = mid - 1;
    }
    return starts[lo]!.module;
  };
}

/**
 * With `window`, only the samples taken inside it count: a service's profile spans its whole life, and
 * start-up (compiling and evaluating the bundle) and the idle minutes around a load would otherwise share
 * the summary with the load itself.
 */
export function summarise(file: string, top = 25, window?: Window): string {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let total = 0;
  let at = p.startTime;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    at += dt;
    if (window && (at < window.fromUs || at > window.toUs)) return;
    self.set(id, (self.get(id) ?? 0) + dt);
    total += dt;
  });
  if (total === 0) return window ? "no samples inside the window" : "no samples";
  const fn = new Map<string, number>();
  const pkg = new Map<string, number>();
  const bundles = new Map<string, ((line: number) => string) | undefined>();
  const moduleOf = (url: string, line: number) => {
    if (!bundles.has(url)) bundles.set(url, bundleModules(url));
    return bundles.get(url)?.(line);
  };
  for (const [id, us] of self) {
    const { functionName, lineNumber } = byId.get(id)!.callFrame;
    // Inside a bundle, the module the line belongs to stands in for the bundle's own path.
    const url = moduleOf(byId.get(id)!.callFrame.url, lineNumber) ?? byId.get(id)!.callFrame.url;
    const where = url.replace(/^file:\/\//, "").replace(/.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, "");
    const key = `${functionName || "(anonymous)"} ${where ? `${where.split("/").slice(-2).join("/")}:${lineNumber + 1}` : ""}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const group = !url
      ? functionName.startsWith("(")
        ? functionName
        : "(native)"
      : url.startsWith("node:")
        ? url.split("/")[0]!.replace(/^node:/, "node:") + url.slice(5).split("/")[0]
        : /node_modules\//.test(url)
          ? url
              .replace(/.*node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?/, "")
              .split("/")
              .slice(0, url.includes("/@") ? 2 : 1)
              .join("/")
          : url
              .replace(/^(file:\/\/.*?\/)?(packages|services|bench|gen)\//, "$2/")
              .split("/")
              .slice(0, 2)
              .join("/");
    pkg.set(group, (pkg.get(group) ?? 0) + us);
  }
  // Inclusive ("total") time: each sample counts once for every distinct function on its stack.
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of self) {
    const top = byId.get(id)!.callFrame.functionName;
    if (top === "(idle)" || top === "(program)" || top === "(garbage collector)") continue;
    busy += us;
    const names = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const { functionName, url, lineNumber } = byId.get(at)!.callFrame;
      if (!functionName || functionName === "(root)") continue;
      names.add(`${functionName} ${url.split("/").slice(-1)[0]}:${lineNumber + 1}`);
    }
    for (const k of names) inclusive.set(k, (inclusive.get(k) ?? 0) + us);
  }
  const pct = (us: number) => `${((us / total) * 100).toFixed(1).padStart(5)} %`;
  const list = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `${pct(us)}  ${k}`)
      .join("\n");
  const ofBusy = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `${((us / busy) * 100).toFixed(1).padStart(5)} %  ${k}`)
      .join("\n");
  const span = window
    ? ` between ${window.fromUs} and ${window.toUs} µs on the monotonic clock (${((window.toUs - window.fromUs) / 1e6).toFixed(1)} s)`
    : "";
  return `total ${(total / 1e6).toFixed(2)} s sampled${span}, ${(busy / 1e6).toFixed(2)} s running JavaScript or native code\n\nby package:\n${list(pkg, 25)}\n\nby function (self):\n${list(fn, top)}\n\nby function, inclusive (share of the running time):\n${ofBusy(inclusive, top)}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, top, from, to] = process.argv.slice(2);
  const window = from && to ? { fromUs: Number(from), toUs: Number(to) } : undefined;
  console.log(summarise(file!, Number(top ?? 25), window));
}
