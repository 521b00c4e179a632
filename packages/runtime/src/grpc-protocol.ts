/** gRPC over HTTP/2 wire details: message framing, timeouts, status message encoding. */

export const FRAME_HEADER_BYTES = 5;

/** Parses a grpc-timeout header ("100m", "5S", …) to milliseconds; undefined when absent or malformed. */
export function parseTimeout(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  switch (m[2]) {
    case "H":
      return n * 3_600_000;
    case "M":
      return n * 60_000;
    case "S":
      return n * 1000;
    case "m":
      return n;
    case "u":
      return n / 1000;
    default:
      return n / 1_000_000;
  }
}

/** One length-prefixed message: flag byte (0 = identity, 1 = compressed), big-endian length, payload. */
export function frame(payload: Uint8Array, compressed = false): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  out[0] = compressed ? 1 : 0;
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** grpc-message is percent-encoded: everything outside printable ASCII, and '%' itself. */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out +=
      byte < 0x20 || byte > 0x7e || byte === 0x25
        ? `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
        : String.fromCharCode(byte);
  }
  return out;
}

export interface RawMessage {
  compressed: boolean;
  data: Uint8Array;
}

export class MessageTooLargeError extends Error {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`message of ${size} bytes is larger than the limit of ${limit} bytes`);
  }
}

/**
 * Splits a stream of DATA chunks into length-prefixed messages. A message may span chunks and a chunk
 * may hold several messages. Refuses a declared length over the limit before buffering it.
 */
export class MessageReader {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;

  constructor(private readonly maxBytes: number) {}

  /** True when bytes of an incomplete message are still waiting. */
  get pending(): boolean {
    return this.bufferedBytes > 0;
  }

  push(chunk: Buffer): RawMessage[] {
    // Fast path: exactly one whole message in one chunk (almost every unary request).
    if (this.bufferedBytes === 0 && chunk.length >= FRAME_HEADER_BYTES) {
      const len = chunk.readUInt32BE(1);
      if (len > this.maxBytes) throw new MessageTooLargeError(len, this.maxBytes);
      if (chunk.length === FRAME_HEADER_BYTES + len) {
        return [{ compressed: chunk[0] === 1, data: chunk.subarray(FRAME_HEADER_BYTES) }];
      }
    }
    this.buffered.push(chunk);
    this.bufferedBytes += chunk.length;
    const out: RawMessage[] = [];
    for (;;) {
      if (this.bufferedBytes < FRAME_HEADER_BYTES) break;
      let head = this.buffered[0]!;
      if (head.length < FRAME_HEADER_BYTES) {
        head = Buffer.concat(this.buffered);
        this.buffered = [head];
      }
      const len = head.readUInt32BE(1);
      if (len > this.maxBytes) throw new MessageTooLargeError(len, this.maxBytes);
      const total = FRAME_HEADER_BYTES + len;
      if (this.bufferedBytes < total) break;
      const all = this.buffered.length === 1 ? head : Buffer.concat(this.buffered);
      out.push({ compressed: all[0] === 1, data: all.subarray(FRAME_HEADER_BYTES, total) });
      const rest = all.subarray(total);
      this.buffered = rest.length > 0 ? [rest] : [];
      this.bufferedBytes = rest.length;
    }
    return out;
  }
}
