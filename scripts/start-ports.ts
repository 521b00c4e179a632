import { execFileSync } from "node:child_process";
import net from "node:net";

/** The fixed ports `pnpm start` listens on (scripts/start.ts; README's table). */
export const PNPM_START_PORTS = [
  8080, 50050, 50051, 50052, 50053, 50054, 50055, 51050, 51051, 51052, 51053, 51054, 51055,
];

function listenable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "0.0.0.0", () => s.close(() => resolve(true)));
  });
}

/**
 * Waits until every one of `pnpm start`'s ports can be bound, for the benchmark and the test that start
 * it after other work. The ports lie in Linux's ephemeral range (32768–60999), so a client connection
 * made a moment before, or a listener on port 0 still shutting down, can be holding one: a full
 * `pnpm bench` failed on 50054 with no listener there, and CI's start test on 50050 for 6 s. Past
 * `timeoutMs` it throws, naming every TCP socket on the busy ports, in any state.
 */
export async function waitForPnpmStartPorts(timeoutMs: number): Promise<void> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const busy: number[] = [];
    for (const port of PNPM_START_PORTS) if (!(await listenable(port))) busy.push(port);
    if (busy.length === 0) return;
    if (performance.now() > until) {
      let holders = "";
      try {
        holders = execFileSync("ss", ["-tanp"], { encoding: "utf8" })
          .split("\n")
          .filter((l) => busy.some((p) => l.includes(`:${p} `)))
          .join("\n");
      } catch {
        holders = "(ss not available)";
      }
      throw new Error(`pnpm start's ports ${busy.join(", ")} are taken:\n${holders}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
