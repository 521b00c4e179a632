import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));

/**
 * Starts one of the hop servers (`bench/servers/<file>`) as its own process and waits for the port it
 * prints ("READY <port>" on stderr). Its stdout (the platform's per-RPC log lines) is discarded, but
 * every line is still produced.
 */
export async function startEchoServer(
  file: string,
  opts: { env?: Record<string, string>; nodeFlags?: string[] } = {},
): Promise<{ child: ChildProcess; port: number; stop: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    [...(opts.nodeFlags ?? []), "--import", "tsx", `bench/servers/${file}`],
    {
      cwd: root,
      env: { ...process.env, PORT: "0", NODE_ENV: "production", ...opts.env },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let err = "";
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      err += d;
      const m = /READY (\d+)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    child.once("exit", (code) => reject(new Error(`${file} exited (${code}) before it was ready:\n${err}`)));
  });
  return {
    child,
    port,
    async stop() {
      child.kill("SIGTERM");
      if (child.exitCode === null) await once(child, "exit");
    },
  };
}
