import type { DescField, DescMessage } from "@bufbuild/protobuf";
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import { createContextKey } from "@connectrpc/connect";

/**
 * Internal replies → the app's, on the wire.
 *
 * The app's messages copy the internal ones field by field under the same names (mapping.ts), with other
 * field numbers and without the internal-only fields. Decoding an internal reply into objects, building
 * the app's message from them and encoding that again was a quarter of the gateway's CPU on a
 * ListActiveOrders call over gRPC (docs/profiles/active-gateway.txt). A wire mapping makes the same bytes
 * from the internal reply's bytes: each field the app's message has is copied under its new number (a
 * message of the same type, a string, a number: the bytes as they are), a message of another type is
 * mapped the same way, field by field, an enum of another type value by value under the same name, and
 * everything else (internal-only fields, unknown fields) is left out. That is what the decode, mapping.ts
 * and the encode do, so the result decodes to the same message (services/gateway/test/wire-mapping.spec.ts
 * holds the two ways to the same bytes).
 *
 * `wireMapping` builds one from the two descriptors, and returns undefined where a field of the app's
 * message has a namesake it cannot take as it is (another kind or scalar type, other presence, oneofs,
 * maps or lists of other types, group encoding): the caller then maps the decoded message as before.
 */
export type WireMapping = (bytes: Uint8Array) => Uint8Array;

/** How one field of the internal message goes to the app's. */
type Step =
  | { kind: "copy"; to: number }
  | { kind: "message"; to: number; plan: Plan }
  /** `implicit`: proto3's plain field, left off the wire when zero. */
  | { kind: "enum"; to: number; values: Map<number, number>; implicit: boolean };

/** Steps by the internal message's field number; fields without one are left out. */
type Plan = Map<number, Step>;

/** Nesting deeper than this in a reply is refused, as protobuf-es refuses it when decoding. */
const MAX_DEPTH = 100;

export function wireMapping(from: DescMessage, to: DescMessage): WireMapping | undefined {
  const plan = planFor(from, to, new Map());
  if (!plan) return undefined;
  return (bytes) => {
    const writer = new BinaryWriter();
    write(plan, bytes, writer, 0);
    return writer.finish();
  };
}

function planFor(from: DescMessage, to: DescMessage, plans: Map<string, Plan>): Plan | undefined {
  const key = `${from.typeName}>${to.typeName}`;
  const known = plans.get(key);
  if (known) return known; // a recursive type: the plan being built
  const plan: Plan = new Map();
  plans.set(key, plan);
  for (const t of to.fields) {
    const f = from.fields.find((x) => x.name === t.name);
    if (!f) continue;
    const step = stepFor(f, t, plans);
    if (!step) return undefined;
    plan.set(f.number, step);
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

function write(plan: Plan, bytes: Uint8Array, writer: BinaryWriter, depth: number): void {
  if (depth > MAX_DEPTH) throw new Error(`messages nested deeper than ${MAX_DEPTH}`);
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [no, wt] = reader.tag();
    const step = plan.get(no);
    if (!step) {
      reader.skip(wt, no);
      continue;
    }
    switch (step.kind) {
      case "copy":
        if (wt === WireType.StartGroup || wt === WireType.EndGroup)
          throw new Error(`field ${no}: unexpected group`);
        writer.tag(step.to, wt).raw(reader.skip(wt, no));
        break;
      case "message":
        if (wt !== WireType.LengthDelimited) throw new Error(`field ${no}: wire type ${wt} for a message`);
        writer.tag(step.to, WireType.LengthDelimited).fork();
        write(step.plan, reader.bytes(), writer, depth + 1);
        writer.join();
        break;
      case "enum": {
        if (wt !== WireType.Varint) throw new Error(`field ${no}: wire type ${wt} for an enum`);
        const value = step.values.get(reader.int32()) ?? 0;
        if (value !== 0 || !step.implicit) writer.tag(step.to, WireType.Varint).int32(value);
        break;
      }
    }
  }
}

/**
 * A reply already encoded, as the method's output message: the lean path (edge-unary.ts) sends its bytes
 * as they are in binary, and writes JSON from the message they decode to.
 */
export class WireReply {
  constructor(readonly bytes: Uint8Array) {}
}

/**
 * Set by the lean path, which takes a WireReply for any reply. Connect-node's path, which takes only
 * messages, never sets it.
 */
export const kWireReplies = createContextKey(false, { description: "the reply may be a WireReply" });
