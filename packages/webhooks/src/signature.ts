import { createHmac, timingSafeEqual } from "node:crypto";

/** The header a signed webhook carries: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">` (Stripe's scheme). */
export const SIGNATURE_HEADER = "dispatch-signature";

function hmac(secret: string, timestamp: number, body: Uint8Array | string): string {
  return createHmac("sha256", secret)
    .update(`${timestamp}.`)
    .update(typeof body === "string" ? body : Buffer.from(body))
    .digest("hex");
}

/** Signs a raw webhook body; returns the header value. */
export function signWebhook(
  secret: string,
  body: Uint8Array | string,
  timestamp = Math.floor(Date.now() / 1000),
): string {
  return `t=${timestamp},v1=${hmac(secret, timestamp, body)}`;
}

export type VerifyResult = { ok: true; timestamp: number } | { ok: false; reason: string };

/**
 * Verifies a signature header over the exact raw body: a v1 signature must match (compared in constant
 * time; several v1 entries are allowed during secret rotation) and the timestamp must be within
 * `toleranceS` of now, so a captured webhook cannot be replayed later.
 */
export function verifyWebhook(
  secret: string,
  header: string | undefined,
  body: Uint8Array | string,
  opts: { toleranceS?: number; now?: number } = {},
): VerifyResult {
  if (!header) return { ok: false, reason: "missing signature header" };
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(",")) {
    const [k, v] = part.split("=", 2);
    if (k?.trim() === "t" && v && /^\d+$/.test(v.trim())) timestamp = Number(v.trim());
    else if (k?.trim() === "v1" && v) signatures.push(v.trim());
  }
  if (timestamp === undefined) return { ok: false, reason: "signature header has no timestamp" };
  if (signatures.length === 0) return { ok: false, reason: "signature header has no v1 signature" };
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - timestamp) > (opts.toleranceS ?? 300))
    return { ok: false, reason: "timestamp outside the tolerance" };
  const expected = Buffer.from(hmac(secret, timestamp, body), "hex");
  const match = signatures.some((s) => {
    const got = Buffer.from(s, "hex");
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
  return match ? { ok: true, timestamp } : { ok: false, reason: "signature does not match" };
}
