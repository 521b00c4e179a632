import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { bundleForLocalRun } from "../packages/build/src/bundle.ts";
import { freePort } from "../packages/testing/src/service-process.ts";
import { busyPorts, holdPorts, PNPM_START_PORTS, socketsOn, waitForPorts } from "../scripts/start-ports.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const app = "http://127.0.0.1:8080/dispatch.app.v1.AppService";

/**
 * `pnpm start` as README gives it, its PGlite folders under `dataRoot`; resolves at the "all healthy" banner.
 * Its ports are fixed (8080, 5005x, 5105x) and inside the kernel's ephemeral range, where another suite's
 * socket may sit for a while: it starts once they can all be bound (up to 60 s, else the error names who
 * holds them). `whileStarting` runs beside it, from the moment it is spawned.
 */
async function pnpmStart(
  dataRoot: string,
  whileStarting?: (launcher: ChildProcess) => Promise<void>,
): Promise<ChildProcess> {
  await waitForPorts(60_000);
  return pnpmStartOnce(dataRoot, whileStarting);
}

async function pnpmStartOnce(
  dataRoot: string,
  whileStarting?: (launcher: ChildProcess) => Promise<void>,
): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: "warn", DATA_ROOT: dataRoot },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const beside = whileStarting?.(child);
  let out = "";
  const up = new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d;
      if (out.includes("Dispatch is up")) resolve();
    });
    child.stderr!.on("data", (d: Buffer) => {
      out += d;
    });
    child.once("exit", (code) =>
      reject(new Error(`pnpm start exited ${code} before all were healthy:\n${out}`)),
    );
  });
  try {
    await Promise.all([up, beside]);
  } catch (err) {
    // Stopped as a developer would stop it, so that no service outlives the test.
    if (child.exitCode === null) await interrupt(child);
    throw err;
  }
  return child;
}

/** The processes `pid` started that run a service's bundle (services/<svc>/.start/main.mjs), from /proc. */
function serviceProcesses(pid: number): number[] {
  const children = readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
    readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").split(" ").filter(Boolean).map(Number),
  );
  return children.filter((child) => {
    try {
      return readFileSync(`/proc/${child}/cmdline`, "utf8").includes(".start/main.mjs");
    } catch {
      return false; // exited since
    }
  });
}

/**
 * Waits until every port of `pnpm start` has a listener, by /proc/net/tcp (binding one to look would take it
 * from the launcher), and returns how many services the launcher had started at that moment.
 */
async function servicesWhenAllPortsListen(launcher: ChildProcess): Promise<number> {
  for (;;) {
    const listening = new Set(
      socketsOn(PNPM_START_PORTS)
        .filter((s) => s.state === "LISTEN")
        .map((s) => s.port),
    );
    if (listening.size === PNPM_START_PORTS.length) return serviceProcesses(launcher.pid!).length;
    if (launcher.exitCode !== null) throw new Error("pnpm start exited before its ports listened");
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A listener of another program on `port` (all addresses, as the services bind). */
async function listenOn(port: number): Promise<net.Server> {
  const server = net.createServer();
  server.listen(port, "0.0.0.0");
  await once(server, "listening");
  return server;
}

/** Ctrl-C, as a developer stops it: every service drains and the launcher exits 0. */
async function interrupt(child: ChildProcess): Promise<number | null> {
  const exited = once(child, "exit");
  child.kill("SIGINT");
  const [code] = await exited;
  return code as number | null;
}

interface Answers {
  SignUp: { session: { accessToken: string } };
  SignIn: { session: { accessToken: string } };
  ListRestaurants: { restaurants: { id: string }[] };
  PlaceOrder: { order: { id: string; restaurantName: string } };
  ListActiveOrders: { orders: { id: string }[] };
}

async function call<M extends keyof Answers>(method: M, body: unknown, token?: string): Promise<Answers[M]> {
  const res = await fetch(`${app}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const json: unknown = await res.json();
  if (res.status !== 200) throw new Error(`${method}: HTTP ${res.status} ${JSON.stringify(json)}`);
  return json as Answers[M];
}

describe("pnpm start", () => {
  const dataRoot = mkdtempSync(join(tmpdir(), "dispatch-start-test-"));
  afterAll(() => rmSync(dataRoot, { recursive: true, force: true }));
  const credentials = { email: "start@example.com", password: "correct horse battery" };

  it("brings all six up on new PGlite folders, serves the walkthrough, and keeps its data for the next start", async () => {
    // Every port is bound before any service starts (each is handed its sockets), so no connection made
    // while the services start can take one of them as its local port.
    let servicesStarted = -1;
    const first = await pnpmStart(dataRoot, async (launcher) => {
      servicesStarted = await servicesWhenAllPortsListen(launcher);
    });
    let orderId: string;
    try {
      expect(servicesStarted).toBe(0);
      const { session } = await call("SignUp", credentials);
      const { restaurants } = await call("ListRestaurants", { pageSize: 1 });
      expect(restaurants).toHaveLength(1);
      const { order } = await call(
        "PlaceOrder",
        {
          requestId: "start-test-0001",
          restaurantId: "rst-001",
          items: [{ menuItemId: "rst-001-item-01", quantity: 2 }],
          deliveryAddress: { line1: "Torstrasse 1", city: "Berlin", countryCode: "DE" },
        },
        session.accessToken,
      );
      expect(order.restaurantName).toBe("Forno Rosso");
      orderId = order.id;
    } finally {
      expect(await interrupt(first)).toBe(0);
    }

    const bundle = join(root, "services/orders/.start/main.mjs");
    const builtAt = statSync(bundle).mtimeMs;
    const again = await pnpmStart(dataRoot);
    try {
      // The same databases (identity's user, orders' order) and the same bundles, not rebuilt.
      const { session } = await call("SignIn", credentials);
      const { orders } = await call("ListActiveOrders", {}, session.accessToken);
      expect(orders.map((o) => o.id)).toEqual([orderId]);
      expect(statSync(bundle).mtimeMs).toBe(builtAt);
    } finally {
      expect(await interrupt(again)).toBe(0);
    }
  }, 240_000);

  it("refuses at once while another program listens on one of its ports, and names the port", async () => {
    const other = await listenOn(51055);
    try {
      const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
        cwd: root,
        env: { ...process.env, LOG_LEVEL: "warn", DATA_ROOT: dataRoot },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      child.stdout!.on("data", (d: Buffer) => {
        out += d;
      });
      child.stderr!.on("data", (d: Buffer) => {
        out += d;
      });
      const [code] = await once(child, "exit");
      expect(code).toBe(1);
      expect(out).toContain("port 51055 already has a listener");
      expect(out).not.toContain("Dispatch is up");
    } finally {
      await new Promise((r) => other.close(r));
    }
  }, 60_000);

  it("waits for a port that is taken for a moment, and names the socket on one that stays taken", async () => {
    const briefly = await listenOn(51055);
    setTimeout(() => briefly.close(), 1000);
    const t0 = performance.now();
    await waitForPorts(10_000, [51055]);
    expect(performance.now() - t0).toBeGreaterThan(900);
    expect(await busyPorts([51055])).toEqual([]);

    const held = await listenOn(51055);
    try {
      expect(socketsOn([51055]).map((s) => s.text)).toContain("51055 LISTEN");
      await expect(waitForPorts(500, [51055])).rejects.toThrow(/ports 51055 are taken:\n {2}51055 LISTEN/);
    } finally {
      await new Promise((r) => held.close(r));
    }
  });

  it("holds ports for services not started yet: a connection is closed at once, a released port is free", async () => {
    const [a, b] = [await freePort(), await freePort()];
    const held = await holdPorts([a, b]);
    try {
      expect(await busyPorts([a, b])).toEqual([a, b]);
      expect(held.fd(a)).toBeGreaterThan(2);
      // Before its service has it, a connection ends at once instead of waiting on a socket nobody serves.
      const socket = net.connect(a, "127.0.0.1");
      socket.on("error", () => {});
      await once(socket, "close");
      held.release([a]);
      expect(await busyPorts([a, b])).toEqual([b]);
      expect(() => held.fd(a)).toThrow(`no listening socket held for port ${a}`);
    } finally {
      held.release([a, b]);
    }
    expect(await busyPorts([a, b])).toEqual([]);
    // A port another program listens on: nothing is held, and the error says why.
    const other = await listenOn(b);
    try {
      await expect(holdPorts([a, b])).rejects.toThrow(/EADDRINUSE/);
      expect(await busyPorts([a])).toEqual([]);
    } finally {
      await new Promise((r) => other.close(r));
    }
  });

  it("rebuilds a service's bundle when one of its sources changes, and only then", async () => {
    const built = async (services: string[]) =>
      [...(await bundleForLocalRun(services))].filter(([, b]) => b.built).map(([s]) => s);
    const touch = (file: string) => {
      const now = new Date();
      utimesSync(join(root, file), now, now);
      return now.getTime();
    };
    const both = ["payments", "notifications"];
    await bundleForLocalRun(both);
    expect(await built(both)).toEqual([]);

    // payments' own source: payments alone is rebuilt.
    const changedAt = touch("services/payments/src/main.ts");
    expect(await built(both)).toEqual(["payments"]);
    const payments = (await bundleForLocalRun(["payments"])).get("payments")!;
    expect(statSync(payments.path).mtimeMs).toBeGreaterThanOrEqual(changedAt - 1000);
    expect(await built(both)).toEqual([]);

    // A module both import (through @dispatch/runtime): both are rebuilt, in one run.
    touch("packages/runtime/src/call-context.ts");
    expect((await built(both)).sort()).toEqual(["notifications", "payments"]);
    expect(await built(both)).toEqual([]);

    // A module only notifications imports: payments is kept.
    touch("services/notifications/src/config.ts");
    expect(await built(both)).toEqual(["notifications"]);
  }, 60_000);
});
