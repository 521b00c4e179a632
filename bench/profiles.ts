/**
 * `pnpm bench:profile`: CPU profiles of the hot paths, the evidence behind the optimisations in
 * docs/BENCHMARKS.md. Bundles the services unminified (readable names), runs the whole stack with
 * `node --cpu-prof`, drives active orders (gRPC, then Connect JSON, 500 rps, 10 s each) and place order
 * (100 rps, 10 s), and the platform echo server under the hop load; writes each profile (open them in
 * Chrome DevTools or speedscope for flame graphs) and a text summary per process and load to
 * docs/profiles/. A summary counts the samples taken while its load ran, not the process's start-up or
 * idle time (a profile's timestamps and `process.hrtime` here read the same monotonic clock).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import { EchoRequestSchema } from "../gen/dispatch/echo/v1/echo_pb.ts";
import { grpcBody, h2load } from "./h2load.ts";
import { activeRun, call, placeRun, seed, signIn } from "./mobile.ts";
import { monotonicUs, summarise, type Window } from "./profile.ts";
import { startEchoServer } from "./servers/start.ts";
import { startStack } from "./stack.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = `${root}/docs/profiles`;
const raw = `${root}/.bench-profiles`;

function write(name: string, file: string, what: string, window: Window): void {
  const text = `# ${name}: ${what}; the samples taken while the load ran\n# ${new Date().toISOString().slice(0, 10)}, pnpm bench:profile; raw profile (the whole process lifetime): ${relative(root, file)} (not committed)\n\n${summarise(file, 40, window)}\n`;
  writeFileSync(`${out}/${name}.txt`, text);
  console.error(`wrote docs/profiles/${name}.txt`);
}

async function stackProfiles(scenario: "active" | "place"): Promise<void> {
  const dir = `${raw}/${scenario}`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  process.env.BENCH_CPU_PROF_DIR = dir;
  const stack = await startStack();
  const windows: Record<string, Window> = {};
  try {
    const email = `profile-${scenario}-${process.pid}@example.com`;
    await call(stack.gatewayUrl, "SignUp", { email, password: "bench-password-1", displayName: "P" });
    const { userId } = await signIn(stack.gatewayUrl, email);
    if (scenario === "active") {
      seed(stack, userId);
      windows.grpc = await timed(() => activeRun(stack, email, "grpc", 500, 10));
      windows.connect = await timed(() => activeRun(stack, email, "connect", 500, 10));
    } else {
      windows.place = await timed(() => placeRun(stack, email, 100, 10));
    }
  } finally {
    await stack.stop();
    delete process.env.BENCH_CPU_PROF_DIR;
  }
  const at = (svc: string) => `${dir}/${svc}.cpuprofile`;
  if (scenario === "active") {
    const what = (protocol: string) =>
      `ListActiveOrders through the gateway, ${protocol}, 500 rps for 10 s (seeded data)`;
    write("active-gateway", at("gateway"), what("gRPC"), windows.grpc!);
    write("active-gateway-connect", at("gateway"), what("Connect JSON over HTTP/1.1"), windows.connect!);
    // Orders serves the gateway over gRPC whichever protocol the app used.
    write("active-orders", at("orders"), what("gRPC"), windows.grpc!);
  } else {
    for (const svc of ["gateway", "orders", "catalog", "notifications"])
      write(`place-${svc}`, at(svc), "PlaceOrder through the gateway, 100 rps for 10 s", windows.place!);
  }
}

/** Runs a load and returns the stretch of the monotonic clock it took. */
async function timed(load: () => Promise<unknown>): Promise<Window> {
  const fromUs = monotonicUs();
  await load();
  return { fromUs, toUs: monotonicUs() };
}

async function hopProfile(): Promise<void> {
  const dir = `${raw}/hop`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const server = await startEchoServer("platform-echo.ts", {
    nodeFlags: ["--cpu-prof", "--cpu-prof-dir", dir],
  });
  const body = grpcBody(
    toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "hello dispatch" })),
  );
  const window = await timed(() =>
    h2load({
      url: `http://127.0.0.1:${server.port}/dispatch.echo.v1.EchoService/Echo`,
      body,
      clients: 10,
      streams: 10,
      durationS: 10,
    }),
  );
  await server.stop();
  // The main thread's profile is the largest; tsx's loader thread writes a small one too.
  const [main] = readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => `${dir}/${f}`)
    .sort((a, b) => statSync(b).size - statSync(a).size);
  const file = `${dir}/platform-echo.cpuprofile`;
  renameSync(main!, file);
  write(
    "hop-platform",
    file,
    "the platform echo server under the hop load (h2load -c 10 -m 10, 10 s)",
    window,
  );
}

mkdirSync(out, { recursive: true });
execFileSync(process.execPath, ["packages/build/src/bundle.ts"], {
  cwd: root,
  stdio: "inherit",
  env: { ...process.env, BUNDLE_MINIFY: "0" },
});
try {
  await hopProfile();
  await stackProfiles("active");
  await stackProfiles("place");
} finally {
  // Leave minified bundles behind, as `pnpm bundle` makes them.
  execFileSync(process.execPath, ["packages/build/src/bundle.ts"], { cwd: root, stdio: "ignore" });
}
