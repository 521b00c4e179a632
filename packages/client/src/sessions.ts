import { Http2SessionManager } from "@connectrpc/connect-node";

/**
 * One long-lived HTTP/2 connection per endpoint, shared by every client in the process that calls it,
 * kept alive with pings so a dead peer is noticed between calls.
 */
const managers = new Map<string, Http2SessionManager>();

export function sessionFor(baseUrl: string): Http2SessionManager {
  let m = managers.get(baseUrl);
  if (!m) {
    m = new Http2SessionManager(baseUrl, {
      pingIntervalMs: 30_000,
      pingTimeoutMs: 10_000,
      idleConnectionTimeoutMs: 15 * 60_000,
    });
    managers.set(baseUrl, m);
  }
  return m;
}

export function closeSession(baseUrl: string): void {
  managers.get(baseUrl)?.abort();
  managers.delete(baseUrl);
}

/** Closes every connection (at shutdown, after the last call). */
export function closeAllSessions(): void {
  for (const m of managers.values()) m.abort();
  managers.clear();
}
