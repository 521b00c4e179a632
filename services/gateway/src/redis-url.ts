import type { RedisOptions } from "ioredis";

const FORM = "must be redis://[user[:password]@]host[:port][/db] or rediss://… for TLS";

/**
 * REDIS_URL as ioredis' connection options. Handed the URL itself, ioredis parses it with node's legacy
 * `url.parse()`, and node prints a DeprecationWarning (DEP0169) on every gateway's stderr at start; here
 * it goes through the WHATWG URL parser. Throws an Error saying what is wrong, without repeating the
 * value (it may carry a password).
 */
export function redisOptions(url: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`${FORM}: not a URL`);
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:")
    throw new Error(`${FORM}: the scheme is ${u.protocol}`);
  if (!u.hostname) throw new Error(`${FORM}: no host`);
  const path = u.pathname.replace(/^\//, "");
  if (path !== "" && !/^\d+$/.test(path)) throw new Error(`${FORM}: the database must be a number`);
  return {
    // An IPv6 address comes bracketed in a URL's host, and bare to the socket.
    host: u.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: u.port ? Number(u.port) : 6379,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    db: path === "" ? 0 : Number(path),
    ...(u.protocol === "rediss:" ? { tls: { servername: u.hostname } } : {}),
  };
}
