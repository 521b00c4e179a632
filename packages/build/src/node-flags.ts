/** The memory limit of every container that runs a service's image (its Deployment and its migration Job). */
export const CONTAINER_MEMORY_MIB = 256;

/**
 * 8 MB semi-spaces. V8 sizes the young generation from the machine's memory (on this 24 GiB machine
 * the gateway's new space grew to 128 MB under load) and keeps what it touched: RSS under 1,000 active-orders
 * calls/s peaked at 335 MB (gateway) and 292 MB (orders), over the Kubernetes limit of 256Mi. Capped at
 * 16 MB semi-spaces: 223 and 203 MB, CPU per call within the noise; at 8 MB then, 200 and 195 MB for 12-18 %
 * more CPU per call (docs/BENCHMARKS-ROUNDS.md, "Fifth round"). Measured again in the twentieth round (three A/Bs at
 * 500 active-orders calls/s, 3 rounds each): 8 MB against 16 MB, RSS after the runs gateway 132–143
 * against 155–165 MB and orders 123–125 against 137–143 MB, CPU per call and p99 within the rounds'
 * spread (docs/BENCHMARKS-ROUNDS.md, "Twentieth round").
 */
const SEMI_SPACE_MB = 8;

/**
 * The old generation, sized so that V8's whole heap (old generation and three semi-spaces: 168 + 24 MB)
 * is three quarters of the container's limit, the rest left to what V8 does not hold (malloc, the
 * binary's pages). V8 lets the old generation grow to a multiple of what survives a full collection
 * before the next, the multiple set by the heap's maximum (`node --trace-gc-verbose`: "[HeapController]
 * factor"): 4.0 with a heap sized from this 24 GiB machine (4 GB), 1.3 with this cap, and 1.3 inside a
 * 256Mi container without it, where Node sizes the heap from the cgroup limit (heap_size_limit 259 MB).
 * The gateway held 47-51 MB of old space under 1,000 active-orders calls/s at 4.0 and 19 MB at 1.3.
 * `pnpm bench:ab` at 1,000 calls/s, 3 rounds (docs/BENCHMARKS-ROUNDS.md, "Eleventh round"), RSS after the runs:
 * gateway 199 → 141 MB with the cap, orders 181 → 138 MB; but 1.3 cost CPU in full collections (4-5
 * times as many): Connect JSON 1,514 → 1,885 µs per call, the hop's server 45.6 → 52.6 µs.
 */
const OLD_SPACE_MB = (CONTAINER_MEMORY_MIB * 3) / 4 - 3 * SEMI_SPACE_MB;

/**
 * Node flags every service runs with, wherever it runs: the images' ENTRYPOINT, `pnpm start` and the
 * benchmarks' processes (with a service's own, nodeFlagsFor). `--heap-growing-percent=100` sets the old generation's multiple to 2.0, in the
 * pods as here: against 1.3, gateway 144 → 158 MB and orders 143 → 148 MB after the same A/B, for
 * Connect JSON 1,390 → 1,306 µs per call (gRPC 1,265 → 1,270) and the hop's server 52.4 → 48.4 µs
 * (48.0 with neither flag).
 */
export const NODE_FLAGS: readonly string[] = [
  `--max-semi-space-size=${SEMI_SPACE_MB}`,
  `--max-old-space-size=${OLD_SPACE_MB}`,
  "--heap-growing-percent=100",
];

/**
 * Flags a service runs with on top of NODE_FLAGS, wherever it runs (nodeFlagsFor).
 *
 * The gateway: no allocation-site pretenuring. V8 allocates objects from a site straight into the old
 * generation once enough of them have outlived a scavenge; under the gateway's load that had sites of
 * per-call objects pretenured, each call's garbage left for a full collection. ListActiveOrders at 1,000
 * rps gRPC (2 x 20 s, `--trace-gc-nvp`): gateway mark-compacts in 46 s 24 / 28 / 24 / 24 with it, 15 / 14
 * without; promoted 5.5-6.1 against 4.2 KB a call; orders unchanged (29-30), so it is not set there.
 * Nor on the platform's hop server (bench/run.ts): 12 alternating pairs of the platform echo server at
 * h2load -c 10 -m 10, 8 s each, median 24.7k req/s with pretenuring and 22.2k without (7 pairs lower,
 * 5 higher). docs/BENCHMARKS-ROUNDS.md, "Twenty-fourth round".
 */
const SERVICE_NODE_FLAGS: Readonly<Record<string, readonly string[]>> = {
  gateway: ["--no-allocation-site-pretenuring"],
};

/** NODE_FLAGS and the service's own (SERVICE_NODE_FLAGS): what `service` runs with. */
export function nodeFlagsFor(service: string): readonly string[] {
  const own = SERVICE_NODE_FLAGS[service];
  return own ? [...NODE_FLAGS, ...own] : NODE_FLAGS;
}

/**
 * Added where a process runs embedded PGlite (`pnpm start`'s services with a database, and the step that
 * initializes their folders), never in the images, which use PostgreSQL. PGlite is PostgreSQL compiled to
 * WebAssembly; V8 compiles it with its baseline compiler (Liftoff) and recompiles the hot functions with
 * TurboFan in the background, which at start-up is CPU that five services and the load of their first
 * minutes share with two cores. Kept on Liftoff, a service's start to SERVING on its folder took 530-540
 * ms of CPU against 750-850 (1,080-1,320 against 550-580 ms three seconds later), and PGlite's initdb
 * 3.2 against 4.4 s; `pnpm start` from a clean checkout 5.5-5.9 s against 7.8-8.1 s, a later start
 * 1.9-2.0 against 2.6-2.9 s. The price is PGlite's speed once warm: 20,000 inserts and 20,000 point
 * selects 10-40 % slower, a scan ~70 % (docs/BENCHMARKS-ROUNDS.md, "Thirteenth round"); a local stack's queries
 * are a developer's, and the benchmarks run PostgreSQL.
 */
export const EMBEDDED_PGLITE_NODE_FLAGS: readonly string[] = ["--liftoff-only"];
