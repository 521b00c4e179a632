/**
 * Node flags every service runs with, wherever it runs: the images' ENTRYPOINT, `pnpm start` and the
 * benchmarks' processes. V8 sizes the young generation from the machine's memory (on this 24 GiB machine
 * the gateway's new space grew to 128 MB under load) and keeps what it touched: RSS under 1,000 active-orders
 * calls/s peaked at 335 MB (gateway) and 292 MB (orders), over the Kubernetes limit of 256Mi. Capped at
 * 16 MB semi-spaces: 223 and 203 MB, CPU per call within the noise; at 8 MB, 200 and 195 MB for 12-18 %
 * more CPU per call (docs/BENCHMARKS.md, "Memory").
 */
export const NODE_FLAGS = ["--max-semi-space-size=16"] as const;
