import { once } from "node:events";
import { readFileSync } from "node:fs";
import net from "node:net";

/**
 * The fixed ports `pnpm start` binds for each service before it starts it (README's table), by the
 * variable that names each; the services are handed these sockets (scripts/start.ts).
 */
export const START_SOCKETS = {
  identity: { PORT: 50051, ADMIN_PORT: 51051 },
  catalog: { PORT: 50052, ADMIN_PORT: 51052 },
  orders: { PORT: 50053, ADMIN_PORT: 51053 },
  payments: { PORT: 50054, ADMIN_PORT: 51054 },
  notifications: { PORT: 50055, ADMIN_PORT: 51055 },
  // The gateway's public port is 8080; its health and event intake are on its internal port.
  gateway: { PORT: 8080, INTERNAL_PORT: 50050, ADMIN_PORT: 51050 },
} as const satisfies Record<string, Record<string, number>>;

/** Every port of START_SOCKETS. */
export const PNPM_START_PORTS: readonly number[] = Object.values(START_SOCKETS).flatMap((s) =>
  Object.values(s),
);

function listenable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "0.0.0.0", () => s.close(() => resolve(true)));
  });
}

/** Of `ports`, those a listener on 0.0.0.0 cannot bind now. */
export async function busyPorts(ports: readonly number[] = PNPM_START_PORTS): Promise<number[]> {
  const busy: number[] = [];
  for (const port of ports) if (!(await listenable(port))) busy.push(port);
  return busy;
}

// The kernel's TCP states, as /proc/net/tcp numbers them.
const STATES = [
  "",
  "ESTABLISHED",
  "SYN_SENT",
  "SYN_RECV",
  "FIN_WAIT1",
  "FIN_WAIT2",
  "TIME_WAIT",
  "CLOSE",
  "CLOSE_WAIT",
  "LAST_ACK",
  "LISTEN",
  "CLOSING",
];

/**
 * Every TCP socket on this host whose local port is one of `ports`, from /proc/net/tcp and tcp6:
 * "50050 TIME_WAIT to 127.0.0.1:6379"-like lines. Empty where /proc has no such files.
 */
export function socketsOn(ports: readonly number[]): { port: number; state: string; text: string }[] {
  const found: { port: number; state: string; text: string }[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let table: string;
    try {
      table = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of table.split("\n").slice(1)) {
      const [, local, remote, st] = line.trim().split(/\s+/);
      if (!local || !remote || !st) continue;
      const port = Number.parseInt(local.split(":")[1] ?? "", 16);
      if (!ports.includes(port)) continue;
      const state = STATES[Number.parseInt(st, 16)] ?? st;
      const peerPort = Number.parseInt(remote.split(":")[1] ?? "", 16);
      const text = state === "LISTEN" ? `${port} LISTEN` : `${port} ${state} (peer port ${peerPort})`;
      found.push({ port, state, text });
    }
  }
  return found;
}

/**
 * Waits until every one of `ports` can be bound. They lie in Linux's ephemeral range (32768–60999)
 * (8080 aside), so a connection this host made a moment before can hold one as its local port, in
 * TIME_WAIT for up to 60 s after it closed: a full `pnpm bench` failed on 50054 with no listener there,
 * and CI's start test on 50050 for 6 s. Past `timeoutMs` it throws, naming every socket on them.
 */
export async function waitForPorts(
  timeoutMs: number,
  ports: readonly number[] = PNPM_START_PORTS,
): Promise<void> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const busy = await busyPorts(ports);
    if (busy.length === 0) return;
    if (performance.now() > until) {
      const held = socketsOn(busy).map((s) => `  ${s.text}`);
      throw new Error(
        `ports ${busy.join(", ")} are taken:\n${held.join("\n") || "  (no socket on them in /proc/net/tcp)"}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Listening sockets `pnpm start` holds for services it has not started yet. */
export interface HeldPorts {
  /** The descriptor of the socket listening on `port`, to hand to a child process. */
  fd(port: number): number;
  /** Closes the launcher's own sockets on `ports` (a child that was handed them keeps them open). */
  release(ports: readonly number[]): void;
}

/**
 * Binds and listens on each of `ports` on all addresses, as the services would, so that no connection made
 * while the services start can take one as its local port; each service is then handed its own
 * (scripts/start.ts). Until then a connection to one is closed at once, as a refused one would have been.
 * Rejects with the error of the first port it cannot bind (EADDRINUSE), having closed the others.
 */
export async function holdPorts(ports: readonly number[]): Promise<HeldPorts> {
  const servers = new Map<number, net.Server>();
  try {
    for (const port of ports) {
      const server = net.createServer((socket) => socket.destroy());
      servers.set(port, server);
      server.listen(port, "0.0.0.0");
      await once(server, "listening");
    }
  } catch (err) {
    for (const server of servers.values()) server.close();
    throw err;
  }
  return {
    fd(port) {
      const fd = (servers.get(port) as unknown as { _handle?: { fd?: number } } | undefined)?._handle?.fd;
      if (typeof fd !== "number" || fd < 0) throw new Error(`no listening socket held for port ${port}`);
      return fd;
    },
    release(released) {
      for (const port of released) {
        servers.get(port)?.close();
        servers.delete(port);
      }
    },
  };
}
