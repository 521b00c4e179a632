import { isUtf8 } from "node:buffer";
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import {
  FIXED32,
  FIXED64,
  LENGTH_DELIMITED,
  readField,
  VARINT,
  WireFormatError,
  wireField,
} from "./wire-fields.ts";

/**
 * A reply's bytes → its Connect JSON, on the wire.
 *
 * A Connect JSON reply the gateway already holds as bytes (a WireReply: orders' active orders mapped on
 * the wire, wire-mapping.ts) was decoded into the app's message only to be written as JSON by
 * `toJsonString`: a quarter of the gateway's running time on a ListActiveOrders call over Connect JSON
 * (its windowed CPU profile, docs/profiles/active-gateway-connect.txt; docs/BENCHMARKS-ROUNDS.md, "Eighteenth
 * round"). `wireJson` writes the same JSON from the bytes, byte for byte what `toJsonString(schema,
 * fromBinary(schema, bytes))` gives with the default options (services/gateway/test/wire-json.spec.ts
 * holds the two to the same bytes): field names in lowerCamelCase, in field-number order; proto3's
 * plain fields left out when zero; 64-bit integers as strings; enums by name (a number the enum lacks
 * as the number); doubles' NaN and infinities as strings; bytes as base64; Timestamps as RFC 3339 text;
 * unknown fields left out.
 *
 * It writes as it walks, so it takes what canonical encoders (protobuf-es, grpc-go) write: fields in
 * ascending number order, a repeated field's elements together, a singular field once. Anything else (a
 * field out of order or repeated, a wire type the field does not have, invalid UTF-8, a Timestamp out of
 * JSON's range, truncated bytes) makes it return undefined, and the caller takes the decoded path, which
 * then answers as it always did (the JSON, or the decode's error). `wireJson` itself returns undefined
 * for a message it does not take at all: oneofs, maps, repeated numbers and enums, groups, proto2's
 * required fields, well-known types other than Timestamp.
 */
export type WireJson = (bytes: Uint8Array) => Buffer | undefined;

enum Kind {
  String,
  Bytes,
  Bool,
  Int32,
  Uint32,
  Sint32,
  Fixed32,
  Sfixed32,
  Float,
  Int64,
  Uint64,
  Sint64,
  Fixed64,
  Sfixed64,
  Double,
  Enum,
  Message,
  Timestamp,
}

/** How one field is written. A class, so every field has one shape where the walk reads them. */
class Field {
  constructor(
    /** Its place among the message's fields in number order: JSON's order. */
    readonly index: number,
    readonly kind: Kind,
    /** `"jsonName":` in UTF-8. */
    readonly key: Uint8Array,
    readonly list: boolean,
    /** proto3's plain field: left out when zero. */
    readonly implicit: boolean,
    /** An enum's names by number, as JSON strings in UTF-8, and its zero (first) value. */
    readonly names: Map<number, Uint8Array> | undefined = undefined,
    readonly zero = 0,
    /** A closed enum (proto2's): a number it lacks is an unknown field, as protobuf-es decodes it. */
    readonly closed = false,
    /** A message field's plan (none for Timestamp). */
    readonly plan: Plan | undefined = undefined,
  ) {}
}

interface Plan {
  small: (Field | undefined)[];
  large: Map<number, Field>;
}
const SMALL_FIELDS = 256;
/** As protobuf-es refuses deeper nesting when decoding. */
const MAX_DEPTH = 100;
const TIMESTAMP = "google.protobuf.Timestamp";

const plans = new WeakMap<DescMessage, WireJson | null>();

/** The JSON writer for a message type (built once per type), or undefined where it does not take the type. */
export function wireJson(desc: DescMessage): WireJson | undefined {
  let known = plans.get(desc);
  if (known === undefined) {
    const plan = desc.typeName === TIMESTAMP ? undefined : planFor(desc, new Map());
    known = plan ? (bytes) => run(plan, bytes) : null;
    plans.set(desc, known);
  }
  return known ?? undefined;
}

function planFor(desc: DescMessage, building: Map<string, Plan>): Plan | undefined {
  const seen = building.get(desc.typeName);
  if (seen) return seen; // a recursive type: the plan being built
  if (desc.typeName.startsWith("google.protobuf.")) return undefined;
  const plan: Plan = { small: [], large: new Map() };
  building.set(desc.typeName, plan);
  const sorted = desc.fields.concat().sort((a, b) => a.number - b.number);
  for (const [index, f] of sorted.entries()) {
    const field = fieldFor(f, index, building);
    if (!field) return undefined;
    if (f.number < SMALL_FIELDS) plan.small[f.number] = field;
    else plan.large.set(f.number, field);
  }
  return plan;
}

const LEGACY_REQUIRED = FeatureSet_FieldPresence.LEGACY_REQUIRED;

function fieldFor(f: DescField, index: number, building: Map<string, Plan>): Field | undefined {
  if (f.oneof || f.presence === LEGACY_REQUIRED) return undefined;
  const key = utf8(`${JSON.stringify(f.jsonName)}:`);
  const implicit = f.presence === FeatureSet_FieldPresence.IMPLICIT;
  switch (f.fieldKind) {
    case "scalar":
      return new Field(index, scalarKind(f.scalar), key, false, implicit);
    case "enum": {
      if (f.enum.typeName === "google.protobuf.NullValue") return undefined;
      const names = new Map<number, Uint8Array>();
      // The name protobuf-es writes for a number (the first, where values alias one another).
      for (const v of f.enum.values) {
        const named = f.enum.value[v.number];
        if (named) names.set(v.number, utf8(JSON.stringify(named.jsonName)));
      }
      const zero = f.enum.values[0]?.number ?? 0;
      return new Field(index, Kind.Enum, key, false, implicit, names, zero, !f.enum.open);
    }
    case "message":
      return messageField(f.message, f.delimitedEncoding, index, key, false, building);
    case "list":
      // Lists are left out when empty, and every element is written, zero or not.
      if (f.listKind === "message")
        return messageField(f.message, f.delimitedEncoding, index, key, true, building);
      // Numbers and enums may come packed or not, and in several runs: not taken.
      if (f.listKind === "scalar" && (f.scalar === ScalarType.STRING || f.scalar === ScalarType.BYTES))
        return new Field(index, scalarKind(f.scalar), key, true, false);
      return undefined;
    case "map":
      return undefined;
  }
}

function messageField(
  m: DescMessage,
  delimited: boolean,
  index: number,
  key: Uint8Array,
  list: boolean,
  building: Map<string, Plan>,
): Field | undefined {
  if (delimited) return undefined;
  if (m.typeName === TIMESTAMP) return new Field(index, Kind.Timestamp, key, list, false);
  const plan = planFor(m, building);
  return plan && new Field(index, Kind.Message, key, list, false, undefined, 0, false, plan);
}

function scalarKind(s: ScalarType): Kind {
  switch (s) {
    case ScalarType.STRING:
      return Kind.String;
    case ScalarType.BYTES:
      return Kind.Bytes;
    case ScalarType.BOOL:
      return Kind.Bool;
    case ScalarType.INT32:
      return Kind.Int32;
    case ScalarType.UINT32:
      return Kind.Uint32;
    case ScalarType.SINT32:
      return Kind.Sint32;
    case ScalarType.FIXED32:
      return Kind.Fixed32;
    case ScalarType.SFIXED32:
      return Kind.Sfixed32;
    case ScalarType.FLOAT:
      return Kind.Float;
    case ScalarType.INT64:
      return Kind.Int64;
    case ScalarType.UINT64:
      return Kind.Uint64;
    case ScalarType.SINT64:
      return Kind.Sint64;
    case ScalarType.FIXED64:
      return Kind.Fixed64;
    case ScalarType.SFIXED64:
      return Kind.Sfixed64;
    case ScalarType.DOUBLE:
      return Kind.Double;
  }
}

/** Thrown inside the walk where the bytes are not what it takes; `run` then returns undefined. */
const NOT_TAKEN = new Error("not taken on the wire");

/** The output, reused from one call to the next (JavaScript runs one at a time); results are copies. */
let buf = new Uint8Array(16 * 1024);
let pos = 0;
const MAX_SCRATCH = 1024 * 1024;

function run(plan: Plan, bytes: Uint8Array): Buffer | undefined {
  pos = 0;
  try {
    message(plan, bytes, 0, bytes.length, 0);
    return Buffer.from(buf.subarray(0, pos));
  } catch (err) {
    if (err === NOT_TAKEN || err instanceof WireFormatError) return undefined;
    throw err;
  } finally {
    if (buf.length > MAX_SCRATCH) buf = new Uint8Array(16 * 1024);
  }
}

/** The wire type each kind comes in. */
const WIRE_TYPE: number[] = [];
for (const k of [Kind.String, Kind.Bytes, Kind.Message, Kind.Timestamp]) WIRE_TYPE[k] = LENGTH_DELIMITED;
for (const k of [
  Kind.Bool,
  Kind.Int32,
  Kind.Uint32,
  Kind.Sint32,
  Kind.Int64,
  Kind.Uint64,
  Kind.Sint64,
  Kind.Enum,
])
  WIRE_TYPE[k] = VARINT;
for (const k of [Kind.Fixed32, Kind.Sfixed32, Kind.Float]) WIRE_TYPE[k] = FIXED32;
for (const k of [Kind.Fixed64, Kind.Sfixed64, Kind.Double]) WIRE_TYPE[k] = FIXED64;

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The field being read: one object for every level of the walk, whose values are copied out at once. */
const f = wireField();

function message(plan: Plan, src: Uint8Array, start: number, end: number, depth: number): void {
  if (depth > MAX_DEPTH) throw NOT_TAKEN;
  put(OPEN_BRACE);
  let last = -1; // the index of the last field read
  let open = false; // the list of field `last` is open
  let written = false; // a field is written: the next needs a comma
  let p = start;
  while (p < end) {
    readField(src, p, end, f);
    const { no, wt, valueStart, bodyStart } = f;
    p = f.end;
    const field = no < SMALL_FIELDS ? plan.small[no] : plan.large.get(no);
    if (field === undefined) continue; // unknown fields are not in JSON
    if (WIRE_TYPE[field.kind] !== wt) throw NOT_TAKEN;
    if (field.closed) {
      readVarint(src, valueStart);
      if (!field.names!.has(lo | 0)) continue;
    }
    if (field.index === last) {
      // Another element of the open list; a singular field twice is not taken (last one wins, or merges).
      if (!open) throw NOT_TAKEN;
      put(COMMA);
      value(field, src, bodyStart, p, depth);
      continue;
    }
    if (field.index < last) throw NOT_TAKEN;
    last = field.index;
    if (open) {
      put(CLOSE_BRACKET);
      open = false;
    }
    if (field.implicit && isZero(field, src, bodyStart, p)) continue;
    if (written) put(COMMA);
    written = true;
    putBytes(field.key);
    if (field.list) {
      put(OPEN_BRACKET);
      open = true;
    }
    value(field, src, bodyStart, p, depth);
  }
  if (open) put(CLOSE_BRACKET);
  put(CLOSE_BRACE);
}

function isZero(field: Field, src: Uint8Array, start: number, end: number): boolean {
  switch (field.kind) {
    case Kind.String:
    case Kind.Bytes:
      return start === end;
    case Kind.Message:
    case Kind.Timestamp:
      return false;
    case Kind.Enum:
      readVarint(src, start);
      return (lo | 0) === field.zero;
    case Kind.Float:
      return Object.is(float32(src, start), 0);
    case Kind.Double:
      return Object.is(float64(src, start), 0);
    default:
      // Every other kind is zero exactly when all its bits are.
      if (WIRE_TYPE[field.kind] === VARINT) readVarint(src, start);
      else if (field.kind === Kind.Fixed32 || field.kind === Kind.Sfixed32) fixed(src, start, 4);
      else fixed(src, start, 8);
      return lo === 0 && hi === 0;
  }
}

function value(field: Field, src: Uint8Array, start: number, end: number, depth: number): void {
  switch (field.kind) {
    case Kind.String:
      string(src, start, end);
      return;
    case Kind.Bytes:
      quoted(base64Encode(src.subarray(start, end)));
      return;
    case Kind.Message:
      message(field.plan!, src, start, end, depth + 1);
      return;
    case Kind.Timestamp:
      timestamp(src, start, end);
      return;
    case Kind.Bool:
      readVarint(src, start);
      // Any set bit is true, as protobuf-es reads a bool.
      ascii(lo !== 0 || hi !== 0 ? "true" : "false");
      return;
    case Kind.Int32:
      readVarint(src, start);
      integer(lo | 0);
      return;
    case Kind.Uint32:
      readVarint(src, start);
      integer(lo >>> 0);
      return;
    case Kind.Sint32:
      readVarint(src, start);
      integer((lo >>> 1) ^ -(lo & 1));
      return;
    case Kind.Fixed32:
      fixed(src, start, 4);
      integer(lo >>> 0);
      return;
    case Kind.Sfixed32:
      fixed(src, start, 4);
      integer(lo | 0);
      return;
    case Kind.Enum: {
      readVarint(src, start);
      const name = field.names!.get(lo | 0);
      if (name) putBytes(name);
      else integer(lo | 0);
      return;
    }
    case Kind.Float:
      double(float32(src, start));
      return;
    case Kind.Double:
      double(float64(src, start));
      return;
    case Kind.Int64:
    case Kind.Uint64:
    case Kind.Sint64:
      readVarint(src, start);
      long(field.kind);
      return;
    case Kind.Fixed64:
      fixed(src, start, 8);
      long(Kind.Uint64);
      return;
    case Kind.Sfixed64:
      fixed(src, start, 8);
      long(Kind.Int64);
      return;
  }
}

/** The last varint or fixed value read, as its low and high 32 bits (unsigned). */
let lo = 0;
let hi = 0;

/** Reads a varint the walk has already bounded (at most ten bytes, the last without its high bit). */
function readVarint(src: Uint8Array, at: number): void {
  let l = 0;
  let h = 0;
  let b = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    b = src[at++]!;
    l |= (b & 0x7f) << shift;
    if (!(b & 0x80)) {
      lo = l >>> 0;
      hi = 0;
      return;
    }
  }
  b = src[at++]!;
  l |= (b & 0x0f) << 28;
  h = (b & 0x7f) >> 4;
  for (let shift = 3; b & 0x80 && shift <= 31; shift += 7) {
    b = src[at++]!;
    h |= (b & 0x7f) << shift;
  }
  lo = l >>> 0;
  hi = h >>> 0;
}

function fixed(src: Uint8Array, at: number, size: 4 | 8): void {
  lo = (src[at]! | (src[at + 1]! << 8) | (src[at + 2]! << 16) | (src[at + 3]! << 24)) >>> 0;
  hi =
    size === 4 ? 0 : (src[at + 4]! | (src[at + 5]! << 8) | (src[at + 6]! << 16) | (src[at + 7]! << 24)) >>> 0;
}

const floats = new DataView(new ArrayBuffer(8));
function float32(src: Uint8Array, at: number): number {
  for (let i = 0; i < 4; i++) floats.setUint8(i, src[at + i]!);
  return floats.getFloat32(0, true);
}
function float64(src: Uint8Array, at: number): number {
  for (let i = 0; i < 8; i++) floats.setUint8(i, src[at + i]!);
  return floats.getFloat64(0, true);
}

/** A 64-bit integer from `lo` and `hi`, as JSON's string of its decimal value. */
function long(kind: Kind.Int64 | Kind.Uint64 | Kind.Sint64): void {
  // Below 2^53 (for sint64, its zigzag form below 2^53) a double holds it exactly.
  if (hi < 0x200000) {
    const u = hi * 0x100000000 + lo;
    quoted(String(kind !== Kind.Sint64 ? u : u % 2 === 1 ? -(u + 1) / 2 : u / 2));
    return;
  }
  const u = (BigInt(hi) << 32n) | BigInt(lo);
  const v = kind === Kind.Uint64 ? u : kind === Kind.Int64 ? BigInt.asIntN(64, u) : (u >> 1n) ^ -(u & 1n);
  quoted(v.toString());
}

function double(v: number): void {
  if (Number.isNaN(v)) quoted("NaN");
  else if (v === Number.POSITIVE_INFINITY) quoted("Infinity");
  else if (v === Number.NEGATIVE_INFINITY) quoted("-Infinity");
  else ascii(String(v));
}

/** The range JSON takes, as protobuf-es checks it: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z. */
const TIMESTAMP_MS_MIN = Date.parse("0001-01-01T00:00:00Z");
const TIMESTAMP_MS_MAX = Date.parse("9999-12-31T23:59:59Z");

function timestamp(src: Uint8Array, start: number, end: number): void {
  // Fields may repeat (the last wins) and come in any order: read all, then write.
  let seconds = 0;
  let nanos = 0;
  let p = start;
  while (p < end) {
    readField(src, p, end, f);
    p = f.end;
    // Other fields are unknown to a Timestamp, and left out as the decode leaves them.
    if (f.no !== 1 && f.no !== 2) continue;
    if (f.wt !== VARINT) throw NOT_TAKEN;
    readVarint(src, f.valueStart);
    if (f.no === 1) {
      // int64 seconds: JSON's range lies well inside a double's exact integers.
      if (hi >= 0x200000 && hi < 0xffe00000) throw NOT_TAKEN;
      seconds = hi < 0x200000 ? hi * 0x100000000 + lo : -((~hi >>> 0) * 0x100000000 + (~lo >>> 0) + 1);
    } else nanos = lo | 0;
  }
  const ms = seconds * 1000;
  if (ms < TIMESTAMP_MS_MIN || ms > TIMESTAMP_MS_MAX || nanos < 0 || nanos > 999_999_999) throw NOT_TAKEN;
  // "YYYY-MM-DDTHH:MM:SS[.fff[fff[fff]]]Z", the date from the day number (the proleptic Gregorian
  // calendar's civil-from-days arithmetic), written digit by digit: Date's toISOString and the strings
  // cut from it were a quarter of the walk.
  const days = Math.floor(seconds / 86_400);
  let rest = seconds - days * 86_400;
  const z = days + 719_468; // days since 0000-03-01
  const era = Math.floor(z / 146_097);
  const ofEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (ofEra - Math.floor(ofEra / 1460) + Math.floor(ofEra / 36_524) - Math.floor(ofEra / 146_096)) / 365,
  );
  const dayOfYear = ofEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153); // months since March
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  reserve(32);
  buf[pos++] = QUOTE;
  digits(year, 4);
  buf[pos++] = 0x2d; // -
  digits(month, 2);
  buf[pos++] = 0x2d;
  digits(day, 2);
  buf[pos++] = 0x54; // T
  digits(Math.floor(rest / 3600), 2);
  rest %= 3600;
  buf[pos++] = 0x3a; // :
  digits(Math.floor(rest / 60), 2);
  buf[pos++] = 0x3a;
  digits(rest % 60, 2);
  if (nanos !== 0) {
    // As many digits as the value needs in threes: milli-, micro- or nanoseconds.
    buf[pos++] = 0x2e; // .
    if (nanos % 1_000_000 === 0) digits(nanos / 1_000_000, 3);
    else if (nanos % 1000 === 0) digits(nanos / 1000, 6);
    else digits(nanos, 9);
  }
  buf[pos++] = 0x5a; // Z
  buf[pos++] = QUOTE;
}

/** `v` (0 ≤ v < 10^width) in `width` decimal digits, zero-padded; the room is reserved by the caller. */
function digits(v: number, width: number): void {
  const out = buf;
  for (let i = pos + width - 1; i >= pos; i--) {
    out[i] = 0x30 + (v % 10);
    v = Math.floor(v / 10);
  }
  pos += width;
}

function string(src: Uint8Array, start: number, end: number): void {
  // Printable ASCII other than the quote and the backslash goes as it is; so does valid UTF-8 beyond
  // ASCII, which JSON.stringify leaves as it is too. Anything to escape goes through JSON.stringify.
  let high = false;
  for (let i = start; i < end; i++) {
    const b = src[i]!;
    if (b >= 0x80) high = true;
    else if (b < 0x20 || b === QUOTE || b === BACKSLASH) {
      escaped(src, start, end);
      return;
    }
  }
  if (high && !isUtf8(src.subarray(start, end))) throw NOT_TAKEN;
  reserve(end - start + 2);
  // Locals in the loops: the module's `buf` and `pos` are read and written from its context otherwise.
  const out = buf;
  let at = pos;
  out[at++] = QUOTE;
  if (end - start < 64) for (let i = start; i < end; i++) out[at++] = src[i]!;
  else {
    out.set(src.subarray(start, end), at);
    at += end - start;
  }
  out[at++] = QUOTE;
  pos = at;
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
function escaped(src: Uint8Array, start: number, end: number): void {
  let text: string;
  try {
    text = decoder.decode(src.subarray(start, end));
  } catch {
    throw NOT_TAKEN; // invalid UTF-8: the decode decides
  }
  const json = JSON.stringify(text);
  reserve(json.length * 3);
  pos += encoder.encodeInto(json, buf.subarray(pos)).written;
}
const encoder = new TextEncoder();

function quoted(text: string): void {
  reserve(text.length + 2);
  const out = buf;
  let at = pos;
  out[at++] = QUOTE;
  for (let i = 0; i < text.length; i++) out[at++] = text.charCodeAt(i);
  out[at++] = QUOTE;
  pos = at;
}

/** Text known to be ASCII without anything to escape. */
function ascii(text: string): void {
  reserve(text.length);
  const out = buf;
  let at = pos;
  for (let i = 0; i < text.length; i++) out[at++] = text.charCodeAt(i);
  pos = at;
}

function integer(v: number): void {
  if (v >= 0 && v < 10) {
    reserve(1);
    buf[pos++] = 0x30 + v;
  } else ascii(String(v));
}

function put(byte: number): void {
  reserve(1);
  buf[pos++] = byte;
}

function putBytes(bytes: Uint8Array): void {
  reserve(bytes.length);
  // Byte by byte: keys and enum names are short, shorter than a call to set is worth.
  const out = buf;
  let at = pos;
  for (let i = 0; i < bytes.length; i++) out[at++] = bytes[i]!;
  pos = at;
}

function reserve(more: number): void {
  if (pos + more <= buf.length) return;
  let size = buf.length * 2;
  while (size < pos + more) size *= 2;
  const next = new Uint8Array(size);
  next.set(buf.subarray(0, pos));
  buf = next;
}

function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}
