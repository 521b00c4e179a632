import { execFile } from "node:child_process";

/**
 * How this VM treats a process at the moment, measured in a child node process so that nothing of the bench
 * is in it. Two things that moved every figure on the VMs these benchmarks ran on (docs/BENCHMARKS-ROUNDS.md,
 * "Twenty-second round"):
 * - the idle event loop: a 1 ms timer, the gaps between its runs over 3 ms, and the longest (a VM that
 *   stalls holds every process up; on a quiet one there are next to none);
 * - memory touched again after 300 ms idle: one read per 4 kB page of a 32 MB array, µs a page, beside the
 *   same reads back to back (where idle memory is slow to touch again, every GC pause and cold path grows).
 */
export interface MachineState {
  seconds: number;
  loopGapsOver3Ms: number;
  longestGapMs: number;
  /** Median of three rounds. */
  retouchUsPerPage: number;
  hotUsPerPage: number;
}

const PROBE = `
const seconds = Number(process.argv[1]);
const gaps = [];
let last = performance.now();
const timer = setInterval(() => { const now = performance.now(); gaps.push(now - last); last = now; }, 1);
await new Promise((r) => setTimeout(r, seconds * 1000));
clearInterval(timer);
const pages = new Float64Array((32 * 2 ** 20) / 8);
pages.fill(1);
const readPages = () => { let s = 0; const t = performance.now(); for (let i = 0; i < pages.length; i += 512) s += pages[i]; return [performance.now() - t, s]; };
readPages();
const retouch = [], hot = [];
for (let round = 0; round < 3; round++) {
  await new Promise((r) => setTimeout(r, 300));
  retouch.push(readPages()[0]);
  hot.push(readPages()[0]);
}
const median = (v) => [...v].sort((a, b) => a - b)[1];
const n = pages.length / 512;
console.log(JSON.stringify({
  seconds,
  loopGapsOver3Ms: gaps.filter((g) => g > 3).length,
  longestGapMs: Math.max(...gaps),
  retouchUsPerPage: (median(retouch) * 1000) / n,
  hotUsPerPage: (median(hot) * 1000) / n,
}));
`;

export function machineState(seconds = 5): Promise<MachineState> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      ["--input-type=module", "-e", PROBE, String(seconds)],
      { timeout: (seconds + 30) * 1000 },
      (err, stdout) => (err ? reject(err) : resolve(JSON.parse(stdout) as MachineState)),
    ),
  );
}

export function describeMachineState(s: MachineState): string {
  return (
    `idle event loop ${s.loopGapsOver3Ms} gaps over 3 ms in ${s.seconds} s (longest ${s.longestGapMs.toFixed(1)} ms); ` +
    `memory touched again after 300 ms idle ${s.retouchUsPerPage.toFixed(2)} µs a 4 kB page ` +
    `(back to back ${s.hotUsPerPage.toFixed(2)})`
  );
}

let once: Promise<string> | undefined;

/** Measured once per bench process (~7 s); "not measured" with the reason if the probe fails. */
export function machineStateLine(): Promise<string> {
  once ??= machineState().then(
    describeMachineState,
    (e: Error) => `not measured (${e.message.split("\n")[0]})`,
  );
  return once;
}
