/** The memory limit of every container that runs a service's image (its Deployment and its migration Job). */
export const CONTAINER_MEMORY_MIB = 256;

/**
 * 16 MB semi-spaces. V8 sizes the young generation from the machine's memory (on this 24 GiB machine
 * the gateway's new space grew to 128 MB under load) and keeps what it touched: RSS under 1,000 active-orders
 * calls/s peaked at 335 MB (gateway) and 292 MB (orders), over the Kubernetes limit of 256Mi. Capped at
 * 16 MB semi-spaces: 223 and 203 MB, CPU per call within the noise; at 8 MB, 200 and 195 MB for 12-18 %
 * more CPU per call (docs/BENCHMARKS.md, "Memory").
 */
const SEMI_SPACE_MB = 16;

/**
 * The old generation, sized so that V8's whole heap (old generation and three semi-spaces: 144 + 48 MB)
 * is three quarters of the container's limit, the rest left to what V8 does not hold (malloc, the
 * binary's pages). V8 lets the old generation grow to a multiple of what survives a full collection
 * before the next, the multiple set by the heap's maximum (`node --trace-gc-verbose`: "[HeapController]
 * factor"): 4.0 with a heap sized from this 24 GiB machine (4 GB), 1.3 with this cap. The gateway held
 * 47-51 MB of old space under 1,000 active-orders calls/s, and 19 MB with the cap. Inside a 256Mi
 * container Node sizes the heap from the cgroup limit by itself (heap_size_limit 259 MB, factor 1.3):
 * the pods ran this way already, and the flag makes `pnpm start`, docker compose (no limits) and the
 * benchmarks run as they do. What it costs is more full collections (4-5 times as many).
 * `pnpm bench:ab` at 1,000 calls/s, 3 rounds (docs/BENCHMARKS.md, "Eleventh round"): RSS after the
 * runs gateway 199 → 141 MB, orders 181 → 138 MB; CPU per call, all processes, gRPC 1,493 → 1,464 µs
 * (no change), Connect JSON 1,514 → 1,885 µs (rounds +25 %, +32 %, −5 %).
 */
const OLD_SPACE_MB = (CONTAINER_MEMORY_MIB * 3) / 4 - 3 * SEMI_SPACE_MB;

/**
 * Node flags every service runs with, wherever it runs: the images' ENTRYPOINT, `pnpm start` and the
 * benchmarks' processes.
 */
export const NODE_FLAGS: readonly string[] = [
  `--max-semi-space-size=${SEMI_SPACE_MB}`,
  `--max-old-space-size=${OLD_SPACE_MB}`,
];
