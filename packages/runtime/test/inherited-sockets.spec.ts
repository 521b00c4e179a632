import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { closeSync, openSync } from "node:fs";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "@dispatch/gen/grpc/health/v1/health_pb.ts";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, inheritedSockets, listenOn } from "../src/index.ts";

const server = fileURLToPath(new URL("./handed-socket-server.ts", import.meta.url));

describe("inheritedSockets (systemd's LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES)", () => {
  it("names each socket from descriptor 3 on, for this process only", () => {
    const env = { LISTEN_PID: "4242", LISTEN_FDS: "3", LISTEN_FDNAMES: "PORT:ADMIN_PORT:INTERNAL_PORT" };
    expect([...inheritedSockets(env, 4242)]).toEqual([
      ["PORT", 3],
      ["ADMIN_PORT", 4],
      ["INTERNAL_PORT", 5],
    ]);
    // Meant for another process (a parent whose variables leaked into this one's), or for no one in particular.
    expect(inheritedSockets(env, 4243).size).toBe(0);
    expect(inheritedSockets({ ...env, LISTEN_PID: undefined }, 4242).size).toBe(0);
    expect(inheritedSockets({}, 4242).size).toBe(0);
  });

  it("refuses variables meant for this process that do not agree, naming the variable", () => {
    const mine = { LISTEN_PID: "7" };
    const problem = (env: Record<string, string>) => {
      try {
        inheritedSockets({ ...mine, ...env }, 7);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      return "accepted";
    };
    expect(problem({ LISTEN_FDS: "two", LISTEN_FDNAMES: "PORT" })).toContain(
      'LISTEN_FDS must be an integer 0-1024 (got "two")',
    );
    expect(problem({ LISTEN_FDS: "2", LISTEN_FDNAMES: "PORT" })).toContain(
      'LISTEN_FDNAMES must name each of the 2 sockets of LISTEN_FDS (got "PORT")',
    );
    expect(problem({ LISTEN_FDS: "2" })).toContain("LISTEN_FDNAMES must name each of the 2 sockets");
    expect(problem({ LISTEN_FDS: "2", LISTEN_FDNAMES: "PORT:PORT" })).toContain(
      'LISTEN_FDNAMES names "PORT" twice',
    );
    expect(problem({ LISTEN_FDS: "0" })).toBe("accepted");
  });

  it("gives each socket out once; a name it was not handed gets the port", () => {
    const env = { LISTEN_PID: String(process.pid), LISTEN_FDS: "1", LISTEN_FDNAMES: "SPEC_PORT" };
    expect(listenOn("OTHER_PORT", 9, env)).toBe(9);
    expect(listenOn("SPEC_PORT", 8, env)).toEqual({ fd: 3 });
    expect(listenOn("SPEC_PORT", 8, env)).toBe(8);
  });
});

describe("a server started on sockets handed to it", () => {
  const closing: (ChildProcess | net.Server)[] = [];
  afterEach(async () => {
    for (const c of closing.splice(0)) {
      if (c instanceof net.Server) await new Promise((r) => c.close(r));
      else if (c.exitCode === null && c.signalCode === null) {
        c.kill("SIGKILL");
        await once(c, "exit");
      }
    }
  });

  async function listening(): Promise<net.Server> {
    const s = net.createServer((socket) => socket.destroy());
    s.listen(0, "127.0.0.1");
    await once(s, "listening");
    closing.push(s);
    return s;
  }
  const portOf = (s: net.Server) => (s.address() as net.AddressInfo).port;
  const fdOf = (s: net.Server) => (s as unknown as { _handle: { fd: number } })._handle.fd;

  /** Starts handed-socket-server.ts with `fds` as its descriptors 3, 4, ...; LISTEN_PID set by the shell it execs from. */
  function start(fds: number[], env: Record<string, string>, setPid = true) {
    const argv = [process.execPath, "--import", "tsx", server];
    const child = setPid
      ? spawn("/bin/sh", ["-c", 'LISTEN_PID=$$ exec "$0" "$@"', ...argv], {
          stdio: ["ignore", "pipe", "pipe", ...fds],
          env: { ...process.env, ...env },
        })
      : spawn(argv[0]!, argv.slice(1), {
          stdio: ["ignore", "pipe", "pipe", ...fds],
          env: { ...process.env, ...env },
        });
    closing.push(child);
    let out = "";
    const answer = new Promise<{ port: number; adminPort: number }>((resolve, reject) => {
      child.stdout!.on("data", (d: Buffer) => {
        out += d;
        if (out.includes("\n")) resolve(JSON.parse(out.split("\n")[0]!));
      });
      child.stderr!.on("data", (d: Buffer) => (out += d));
      child.once("exit", (code) => reject(new Error(`exited ${code}:\n${out}`)));
    });
    return { child, answer };
  }

  async function serving(port: number): Promise<boolean> {
    const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
    const res = await health.check({ service: "" }, { timeoutMs: 5000 });
    return res.status === HealthCheckResponse_ServingStatus.SERVING;
  }

  it("serves on them rather than on PORT, after the parent closed its copies; calls that came first wait", async () => {
    const grpc = await listening();
    const admin = await listening();
    const taken = await listening(); // PORT: binding it would fail
    const { child, answer } = start([fdOf(grpc), fdOf(admin)], {
      PORT: String(portOf(taken)),
      ADMIN_PORT: String(portOf(taken)),
      LISTEN_FDS: "2",
      LISTEN_FDNAMES: "PORT:ADMIN_PORT",
    });
    const [grpcPort, adminPort] = [portOf(grpc), portOf(admin)];
    await new Promise((r) => grpc.close(r));
    await new Promise((r) => admin.close(r));
    // Asked before the server is up: the socket listens all along, so the call waits in its backlog.
    const early = serving(grpcPort);
    expect(await answer).toEqual({ port: grpcPort, adminPort });
    expect(await early).toBe(true);
    const readyz = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
    expect([readyz.status, await readyz.text()]).toEqual([200, "ready\n"]);
    child.kill("SIGTERM");
    const [code] = await once(child, "exit");
    expect(code).toBe(0);
    // It was the last holder: the port is closed now.
    await expect(serving(grpcPort)).rejects.toThrow();
  });

  it("binds PORT when the sockets were meant for another process (LISTEN_PID)", async () => {
    const grpc = await listening();
    const { answer } = start(
      [fdOf(grpc)],
      { PORT: "0", ADMIN_PORT: "0", LISTEN_PID: "1", LISTEN_FDS: "1", LISTEN_FDNAMES: "PORT" },
      false,
    );
    const { port } = await answer;
    expect(port).not.toBe(portOf(grpc));
    expect(await serving(port)).toBe(true);
  });

  it("fails to start, saying which descriptor, when what it was handed is not a listening socket", async () => {
    const file = openSync(server, "r");
    try {
      const { answer } = start([file], {
        PORT: "0",
        ADMIN_PORT: "0",
        LISTEN_FDS: "1",
        LISTEN_FDNAMES: "PORT",
      });
      await expect(answer).rejects.toThrow(/cannot listen on the socket handed over as descriptor 3/);
    } finally {
      closeSync(file);
    }
  });
});
