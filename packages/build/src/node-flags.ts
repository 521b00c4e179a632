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
 * binary's pages). Without it V8 sizes the heap from the machine (4 GB here) and lets the old generation
 * grow up to four times what survives a full collection before the next: 47-51 MB old space in the
 * gateway under 1,000 calls/s against 19 MB with the cap. Inside a 256Mi container Node sizes the heap
 * from the cgroup limit by itself (heap_size_limit 259 MB), so the pods ran this way already; the flag
 * makes `pnpm start`, docker compose (no limits) and the benchmarks run as they do. Measured with
 * `pnpm bench:ab` (docs/BENCHMARKS.md, "Memory"): RSS after the runs gateway 220 → 160 MB, orders
 * 189 → 152 MB, for 3-6 % more CPU per call.
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
