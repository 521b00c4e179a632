import type { GeoPoint } from "./catalog.ts";

/**
 * Page tokens are opaque to clients: base64url JSON that also records the query they belong to, so a
 * token replayed against a different filter is rejected instead of returning a wrong page.
 */
export type PageCursor =
  | { kind: "name"; cuisine: string; name: string; id: string }
  | { kind: "near"; cuisine: string; lat: number; lng: number; offset: number };

export function encodePageToken(cursor: PageCursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString("base64url");
}

export function decodePageToken(
  token: string,
  query: { cuisine: string; near: GeoPoint | undefined },
): PageCursor | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const c = parsed as Record<string, unknown>;
  if (c.cuisine !== query.cuisine) return undefined;
  if (c.kind === "name" && !query.near && typeof c.name === "string" && typeof c.id === "string") {
    return { kind: "name", cuisine: query.cuisine, name: c.name, id: c.id };
  }
  if (
    c.kind === "near" &&
    query.near &&
    c.lat === query.near.latitude &&
    c.lng === query.near.longitude &&
    Number.isInteger(c.offset) &&
    (c.offset as number) >= 0
  ) {
    return {
      kind: "near",
      cuisine: query.cuisine,
      lat: query.near.latitude,
      lng: query.near.longitude,
      offset: c.offset as number,
    };
  }
  return undefined;
}
