import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { promisify } from "node:util";

const run = promisify(execFile);
/** vfs and chroot: what works without a container engine or kernel overlay support (as here and in CI). */
const STORAGE = ["--storage-driver", "vfs"];

export async function buildah(args: string[], cwd?: string): Promise<string> {
  const { stdout } = await run("buildah", [...STORAGE, ...args], {
    cwd,
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout.trim();
}

export interface ImageConfig {
  user: string;
  entrypoint: string[];
  env: Record<string, string>;
  exposed: string[];
  healthcheck: string[] | undefined;
  /** Uncompressed size of each layer, base first. */
  layers: number[];
}

export async function inspectImage(image: string): Promise<ImageConfig> {
  const d = JSON.parse(await buildah(["inspect", "--type", "image", image]));
  const config = d.Docker?.config ?? d.OCIv1.config;
  const manifest = typeof d.Manifest === "string" ? JSON.parse(d.Manifest) : d.Manifest;
  return {
    user: config.User ?? "",
    entrypoint: config.Entrypoint ?? [],
    env: Object.fromEntries(
      (config.Env ?? []).map((e: string) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]),
    ),
    exposed: Object.keys(config.ExposedPorts ?? {}),
    healthcheck: config.Healthcheck?.Test,
    layers: manifest.layers.map((l: { size: number }) => l.size),
  };
}

/** The process a `buildah run` started inside the container (its entrypoint), found through /proc. */
export function containerProcess(buildahRun: ChildProcess, script: string): number | undefined {
  const parent = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // "pid (comm) state ppid ...": comm may hold spaces, so read after its closing parenthesis.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // gone
    }
  }
  const descends = (pid: number): boolean => {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p))
      if (p === buildahRun.pid) return true;
    return false;
  };
  for (const pid of parent.keys()) {
    if (!descends(pid)) continue;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
      if (/(^|\/)node$/.test(argv[0] ?? "") && argv.at(-1) === script) return pid;
    } catch {
      // gone
    }
  }
  return undefined;
}

/** Arguments of `buildah run` for `command` in `container` with `env` (chroot isolation, as built). */
function runArgs(container: string, env: Record<string, string>, command: string[]): string[] {
  const envArgs = Object.entries(env).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
  return ["run", "--isolation", "chroot", ...envArgs, container, "--", ...command];
}

/** Runs `command` to its end inside the container; resolves with its output, rejects on a failed exit. */
export function runIn(container: string, env: Record<string, string>, command: string[]): Promise<string> {
  return buildah(runArgs(container, env, command));
}

/** `buildah run` of the container with the image's own entrypoint, as a runtime would start it. */
export function runContainer(container: string, entrypoint: string[], env: Record<string, string>) {
  const child = spawn("buildah", [...STORAGE, ...runArgs(container, env, entrypoint)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return { child, exited, output: () => output };
}
