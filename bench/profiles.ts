/**
 * `pnpm bench:profile`: CPU profiles of the hot paths, the evidence behind the optimisations in
 * docs/BENCHMARKS.md. Bundles the services unminified (readable names), runs the whole stack with
 * `node --cpu-prof`, drives active orders (gRPC, 500 rps, 10 s) and place order (100 rps, 10 s), and the
 * platform echo server under the hop load; writes each profile (open them in Chrome DevTools or
 * speedscope for flame graphs) and a text summary per process to docs/profiles/.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import { EchoRequestSchema } from "../gen/dispatch/echo/v1/echo_pb.ts";
import { grpcBody, h2load } from "./h2load.ts";
import { activeRun, call, placeRun, seed, signIn } from "./mobile.ts";
import { summarise } from "./profile.ts";
import { startEchoServer } from "./servers/start.ts";
import { startStack } from "./stack.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = `${root}/docs/profiles`;
const raw = `${root}/.bench-profiles`;

function write(name: string, file: string, what: string): void {
  const text = `# ${name}: ${what}\n# ${new Date().toISOString().slice(0, 10)}, pnpm bench:profile; raw profile: ${relative(root, file)} (not committed)\n\n${summarise(file, 40)}\n`;
  writeFileSync(`${out}/${name}.txt`, text);
  console.error(`wrote docs/profiles/${name}.txt`);
}

async function stackProfiles(scenario: "active" | "place"): Promise<void> {
  const dir = `${raw}/${scenario}`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  process.env.BENCH_CPU_PROF_DIR = dir;
  const stack = await startStack();
  try {
    const email = `profile-${scenario}-${process.pid}@example.com`;
    await call(stack.gatewayUrl, "SignUp", { email, password: "bench-password-1", displayName: "P" });
    const { userId } = await signIn(stack.gatewayUrl, email);
    if (scenario === "active") {
      seed(stack, userId);
      await activeRun(stack, email, "grpc", 500, 10);
    } else {
      await placeRun(stack, email, 100, 10);
    }
  } finally {
    await stack.stop();
    delete process.env.BENCH_CPU_PROF_DIR;
  }
  const what =
    scenario === "active"
      ? "ListActiveOrders through the gateway, gRPC, 500 rps for 10 s (seeded data), whole process lifetime"
      : "PlaceOrder through the gateway, 100 rps for 10 s, whole process lifetime";
  for (const svc of ["gateway", "orders", ...(scenario === "place" ? ["catalog", "notifications"] : [])])
    write(`${scenario}-${svc}`, `${dir}/${svc}.cpuprofile`, what);
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
  await h2load({
    url: `http://127.0.0.1:${server.port}/dispatch.echo.v1.EchoService/Echo`,
    body,
    clients: 10,
    streams: 10,
    durationS: 10,
  });
  await server.stop();
  // The main thread's profile is the largest; tsx's loader thread writes a small one too.
  const [main] = readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => `${dir}/${f}`)
    .sort((a, b) => statSync(b).size - statSync(a).size);
  const file = `${dir}/platform-echo.cpuprofile`;
  renameSync(main!, file);
  write("hop-platform", file, "the platform echo server under the hop load (h2load -c 10 -m 10, 10 s)");
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
