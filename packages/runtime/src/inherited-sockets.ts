import { once } from "node:events";
import type net from "node:net";
import { ConfigError } from "./config.ts";

/** Where a server listens: a port to bind (0: any free one), or a socket already listening, by descriptor. */
export type ListenOn = number | { fd: number };

/**
 * Listening sockets handed to this process by whoever started it, by systemd's socket-activation
 * protocol (sd_listen_fds(3)): LISTEN_PID is this process's pid, LISTEN_FDS how many sockets there are,
 * from descriptor 3 on, and LISTEN_FDNAMES their names, colon-separated. Dispatch names each socket after
 * the variable that would otherwise give its port (PORT, ADMIN_PORT, INTERNAL_PORT).
 *
 * `pnpm start` binds its fixed ports before it starts any service and hands each service its sockets:
 * those ports lie inside Linux's ephemeral range, and a service that bound its own could find one taken by
 * an outgoing connection made while the others started. Under systemd, a socket unit does the same.
 *
 * Variables meant for another process (LISTEN_PID not this one, or absent) are ignored, as sd_listen_fds
 * ignores them; variables meant for this one that do not agree with each other are a configuration error.
 */
export function inheritedSockets(
  env: Record<string, string | undefined> = process.env,
  pid = process.pid,
): Map<string, number> {
  const sockets = new Map<string, number>();
  if (env.LISTEN_FDS === undefined || env.LISTEN_PID !== String(pid)) return sockets;
  const count = Number(env.LISTEN_FDS);
  if (!Number.isInteger(count) || count < 0 || count > 1024)
    throw new ConfigError([`LISTEN_FDS must be an integer 0-1024 (got ${JSON.stringify(env.LISTEN_FDS)})`]);
  const names = (env.LISTEN_FDNAMES ?? "").split(":");
  if (count > 0 && names.length !== count)
    throw new ConfigError([
      `LISTEN_FDNAMES must name each of the ${count} sockets of LISTEN_FDS (got ${JSON.stringify(env.LISTEN_FDNAMES ?? "")})`,
    ]);
  for (let i = 0; i < count; i++) {
    const name = names[i]!;
    if (sockets.has(name)) throw new ConfigError([`LISTEN_FDNAMES names ${JSON.stringify(name)} twice`]);
    sockets.set(name, 3 + i);
  }
  return sockets;
}

const taken = new Set<number>();

/**
 * The socket this process was handed for `name` (see inheritedSockets), else `port`. Each socket is given
 * out once: a second server in the same process asking for the same name binds `port`.
 */
export function listenOn(
  name: string,
  port: number,
  env: Record<string, string | undefined> = process.env,
): ListenOn {
  const fd = inheritedSockets(env).get(name);
  if (fd === undefined || taken.has(fd)) return port;
  taken.add(fd);
  return { fd };
}

/** Starts `server` listening on a port (on `host`) or on a handed socket; resolves once it listens. */
export async function listen(server: net.Server, on: ListenOn, host: string): Promise<void> {
  if (typeof on === "number") server.listen(on, host);
  else server.listen({ fd: on.fd });
  await once(server, "listening").catch((err: Error) => {
    if (typeof on === "number") throw err;
    throw new Error(`cannot listen on the socket handed over as descriptor ${on.fd}: ${err.message}`);
  });
}
