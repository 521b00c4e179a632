import type { DescField, DescMessage } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import { createContextKey } from "@connectrpc/connect";
import { LENGTH_DELIMITED, readField, VARINT, wireField } from "./wire-fields.ts";

/**
 * Internal replies → the app's, on the wire.
 *
 * The app's messages copy the internal ones field by field under the same names (mapping.ts), with other
 * field numbers and without the internal-only fields. Decoding an internal reply into objects, building
 * the app's message from them and encoding that again was a quarter of the gateway's running time on a
 * ListActiveOrders call over gRPC (its windowed CPU profile; docs/BENCHMARKS-ROUNDS.md, "Seventeenth round").
 * Mapped on the wire, `pnpm bench:ab` at 500 calls/s put the gateway's CPU per call at 730 → 467 µs over
 * gRPC and 629 → 570 µs over Connect JSON (medians of three rounds). A wire mapping makes the same bytes
 * from the internal reply's bytes: each field the app's message has is copied under its new number (a
 * message of the same type, a string, a number: the bytes as they are), a message of another type is
 * mapped the same way, field by field, an enum of another type value by value under the same name, and
 * everything else (internal-only fields, unknown fields) is left out. That is what the decode, mapping.ts
 * and the encode do, so the result decodes to the same message (services/gateway/test/wire-mapping.spec.ts
 * holds the two ways to the same bytes). Strings are copied as bytes, unchecked, where the decode would
 * have put U+FFFD in place of invalid UTF-8; orders encodes JavaScript strings, which are never invalid.
 *
 * `wireMapping` builds one from the two descriptors, and returns undefined where a field of the app's
 * message has a namesake it cannot take as it is (another kind or scalar type, other presence, oneofs,
 * maps or lists of other types, group encoding): the caller then maps the decoded message as before.
 */
export type WireMapping = (bytes: Uint8Array) => Uint8Array<ArrayBuffer>;

/** How one field of the internal message goes to the app's. */
type Step =
  | { kind: "copy"; to: number }
  | { kind: "message"; to: number; plan: Plan }
  /** `implicit`: proto3's plain field, left off the wire when zero. */
  | { kind: "enum"; to: number; values: Map<number, number>; implicit: boolean };

/**
 * Steps by the internal message's field number, in an array up to SMALL_FIELDS and a map beyond; fields
 * without one are left out.
 */
interface Plan {
  small: (Step | undefined)[];
  large: Map<number, Step>;
}
const SMALL_FIELDS = 256;

/** Nesting deeper than this in a reply is refused, as protobuf-es refuses it when decoding. */
const MAX_DEPTH = 100;

export function wireMapping(from: DescMessage, to: DescMessage): WireMapping | undefined {
  const plan = planFor(from, to, new Map());
  if (!plan) return undefined;
  return (bytes) => {
    const out: Out = { buf: scratch, pos: 0 };
    try {
      write(plan, bytes, 0, bytes.length, out, 0);
      return out.buf.slice(0, out.pos);
    } finally {
      if (out.buf.length > scratch.length && out.buf.length <= MAX_SCRATCH) scratch = out.buf;
    }
  };
}

function planFor(from: DescMessage, to: DescMessage, plans: Map<string, Plan>): Plan | undefined {
  const key = `${from.typeName}>${to.typeName}`;
  const known = plans.get(key);
  if (known) return known; // a recursive type: the plan being built
  const plan: Plan = { small: [], large: new Map() };
  plans.set(key, plan);
  for (const t of to.fields) {
    const f = from.fields.find((x) => x.name === t.name);
    if (!f) continue;
    const step = stepFor(f, t, plans);
    if (!step) return undefined;
    if (f.number < SMALL_FIELDS) plan.small[f.number] = step;
    else plan.large.set(f.number, step);
  }
  return plan;
}

function stepFor(f: DescField, t: DescField, plans: Map<string, Plan>): Step | undefined {
  if (f.oneof || t.oneof || f.presence !== t.presence) return undefined;
  const to = t.number;
  switch (f.fieldKind) {
    case "scalar":
      return t.fieldKind === "scalar" && f.scalar === t.scalar ? { kind: "copy", to } : undefined;
    case "enum": {
      if (t.fieldKind !== "enum") return undefined;
      if (f.enum.typeName === t.enum.typeName) return { kind: "copy", to };
      // By name, as mapping.ts does; a value the app's enum lacks becomes its zero value.
      const values = new Map<number, number>();
      for (const v of f.enum.values) {
        const target = t.enum.values.find((x) => x.localName === v.localName);
        values.set(v.number, target?.number ?? 0);
      }
      return { kind: "enum", to, values, implicit: t.presence === FeatureSet_FieldPresence.IMPLICIT };
    }
    case "message": {
      if (t.fieldKind !== "message" || f.delimitedEncoding || t.delimitedEncoding) return undefined;
      if (f.message.typeName === t.message.typeName) return { kind: "copy", to };
      const plan = planFor(f.message, t.message, plans);
      return plan ? { kind: "message", to, plan } : undefined;
    }
    case "list": {
      if (t.fieldKind !== "list" || f.listKind !== t.listKind) return undefined;
      if (f.listKind === "scalar") return f.scalar === t.scalar ? { kind: "copy", to } : undefined;
      if (f.listKind === "enum")
        return f.enum.typeName === t.enum?.typeName ? { kind: "copy", to } : undefined;
      if (t.listKind !== "message" || f.delimitedEncoding || t.delimitedEncoding) return undefined;
      if (f.message.typeName === t.message.typeName) return { kind: "copy", to };
      const plan = planFor(f.message, t.message, plans);
      return plan ? { kind: "message", to, plan } : undefined;
    }
    case "map": {
      if (t.fieldKind !== "map" || f.mapKey !== t.mapKey || f.mapKind !== t.mapKind) return undefined;
      const same =
        f.mapKind === "scalar"
          ? f.scalar === t.scalar
          : f.mapKind === "enum"
            ? f.enum.typeName === t.enum?.typeName
            : f.message.typeName === t.message?.typeName;
      return same ? { kind: "copy", to } : undefined;
    }
  }
}

/**
 * The walk over the wire, on the bytes themselves: protobuf-es's BinaryReader and BinaryWriter made it as
 * slow as the decode it replaces (an object and a DataView per message read, an array per tag, a view
 * per value copied; 22-26 µs against 24-26 µs for the reply of three orders, in a loop).
 */
interface Out {
  buf: Uint8Array<ArrayBuffer>;
  pos: number;
}

/** The output's buffer, reused from one mapping to the next (JavaScript runs one at a time); results are copies. */
let scratch: Uint8Array<ArrayBuffer> = new Uint8Array(16 * 1024);
const MAX_SCRATCH = 1024 * 1024;

/** The field being read: one object for every level of the walk, whose values are copied out at once. */
const f = wireField();

function write(plan: Plan, src: Uint8Array, start: number, end: number, out: Out, depth: number): void {
  if (depth > MAX_DEPTH) throw new Error(`messages nested deeper than ${MAX_DEPTH}`);
  let p = start;
  while (p < end) {
    readField(src, p, end, f);
    const { no, wt, valueStart, bodyStart } = f;
    p = f.end;
    const step = no < SMALL_FIELDS ? plan.small[no] : plan.large.get(no);
    if (step === undefined) continue;
    if (step.kind === "copy") {
      writeVarint(out, (step.to << 3) | wt, p - valueStart);
      const buf = out.buf;
      let at = out.pos;
      // Byte by byte: most values are a few bytes long, shorter than a view over them is to make.
      if (p - valueStart < 128) for (let i = valueStart; i < p; i++) buf[at++] = src[i]!;
      else {
        buf.set(src.subarray(valueStart, p), at);
        at += p - valueStart;
      }
      out.pos = at;
    } else if (step.kind === "message") {
      if (wt !== LENGTH_DELIMITED) throw new Error(`field ${no}: wire type ${wt} for a message`);
      writeVarint(out, (step.to << 3) | LENGTH_DELIMITED, 5);
      // The length goes first but is known only after: reserve the source's length size, shift if it differs.
      const reserved = varintSize(p - bodyStart);
      const lengthAt = out.pos;
      out.pos += reserved;
      const bodyAt = out.pos;
      write(step.plan, src, bodyStart, p, out, depth + 1);
      const written = out.pos - bodyAt;
      const size = varintSize(written);
      if (size !== reserved) {
        ensure(out, size - reserved);
        out.buf.copyWithin(lengthAt + size, bodyAt, out.pos);
        out.pos += size - reserved;
      }
      putVarint(out.buf, lengthAt, written);
    } else {
      if (wt !== VARINT) throw new Error(`field ${no}: wire type ${wt} for an enum`);
      // An int32 on the wire; its low 32 bits are the value (a negative one takes ten bytes).
      let v = 0;
      for (let i = valueStart, shift = 0; i < p && shift < 32; i++, shift += 7)
        v |= (src[i]! & 0x7f) << shift;
      const value = step.values.get(v) ?? 0;
      if (value !== 0 || !step.implicit) {
        writeVarint(out, (step.to << 3) | VARINT, 10);
        if (value >= 0) writeVarint(out, value, 0);
        else writeNegative(out, value);
      }
    }
  }
}

function ensure(out: Out, more: number): void {
  if (out.pos + more <= out.buf.length) return;
  let size = out.buf.length * 2;
  while (size < out.pos + more) size *= 2;
  const next = new Uint8Array(size);
  next.set(out.buf.subarray(0, out.pos));
  out.buf = next;
}

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/** Writes an unsigned 32-bit varint, with room for `more` bytes after it. */
function writeVarint(out: Out, v: number, more: number): void {
  ensure(out, 5 + more);
  out.pos = putVarint(out.buf, out.pos, v >>> 0);
}

function putVarint(buf: Uint8Array, at: number, v: number): number {
  while (v > 0x7f) {
    buf[at++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[at++] = v;
  return at;
}

/** A negative int32 as protobuf writes it: sign-extended to 64 bits, ten bytes. */
function writeNegative(out: Out, v: number): void {
  ensure(out, 10);
  let lo = v >>> 0;
  for (let i = 0; i < 4; i++) {
    out.buf[out.pos++] = (lo & 0x7f) | 0x80;
    lo >>>= 7;
  }
  // bits 28-31 of the value, then the sign's ones up to bit 63
  out.buf[out.pos++] = (lo & 0x0f) | 0x70 | 0x80;
  for (let i = 0; i < 4; i++) out.buf[out.pos++] = 0xff;
  out.buf[out.pos++] = 0x01;
}

/**
 * A reply already encoded, as the method's output message: the lean path (edge-unary.ts) sends its bytes
 * as they are in binary, and writes JSON from them (wire-json.ts).
 */
export class WireReply {
  constructor(readonly bytes: Uint8Array) {}
}

/**
 * Set by the lean path, which takes a WireReply for any reply. Connect-node's path, which takes only
 * messages, never sets it.
 */
export const kWireReplies = createContextKey(false, { description: "the reply may be a WireReply" });
