import { create, createFileRegistry, type DescMessage, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import {
  EnumDescriptorProtoSchema,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { ListActiveOrdersResponseSchema as AppListSchema } from "@dispatch/gen/dispatch/app/v1/app_pb.ts";
import {
  ListActiveOrdersResponseSchema,
  type Order,
  OrderStatus,
} from "@dispatch/gen/dispatch/orders/v1/orders_pb.ts";
import { describe, expect, it } from "vitest";
import * as map from "../src/mapping.ts";
import { wireMapping } from "../src/wire-mapping.ts";
import { money, order, reply, seeded } from "./active-orders.ts";

const mapping = wireMapping(ListActiveOrdersResponseSchema, AppListSchema)!;

/** What the gateway sends when it decodes orders' reply: mapping.ts, then protobuf-es's encoder. */
function decoded(bytes: Uint8Array): Uint8Array {
  const internal = fromBinary(ListActiveOrdersResponseSchema, bytes);
  return toBinary(AppListSchema, create(AppListSchema, { orders: internal.orders.map(map.order) }));
}

describe("the wire mapping of orders' active orders to the app's", () => {
  it("makes the bytes the decode, mapping.ts and the encode make", () => {
    const cases: [string, Uint8Array][] = [
      ["no orders", reply([])],
      ["three full orders", reply([order(1), order(2), order(3)])],
      [
        "every status",
        reply(
          Object.values(OrderStatus)
            .filter((s) => typeof s === "number")
            .map((s, i) => order(i, { status: s })),
        ),
      ],
      ["a status the app does not know", reply([order(1, { status: 42 as OrderStatus })])],
      [
        "text beyond ASCII",
        reply([order(1, { restaurantName: "Café Ünïcødé 🍕", items: [{ name: "Pho bò – 大" }] })]),
      ],
      [
        "fields left unset",
        reply([{ id: "x" }, order(2, { deliveryAddress: undefined, createTime: undefined, items: [] })]),
      ],
      [
        "large and negative amounts",
        reply([
          order(1, {
            total: money(9_007_199_254_740_993n, "JPY"),
            subtotal: money(-5),
            deliveryFee: money(0),
          }),
        ]),
      ],
    ];
    for (const [name, bytes] of cases) {
      const mapped = mapping(bytes);
      expect(Buffer.from(mapped), name).toEqual(Buffer.from(decoded(bytes)));
    }
    // And what the app decodes from it: the internal-only fields are gone.
    const app = fromBinary(AppListSchema, mapping(reply([order(1)])));
    expect(app.orders[0]!.restaurantName).toBe("Trattoria Da Marco");
    expect(app.orders[0]!.items).toHaveLength(5);
    expect(app.orders[0]!.$unknown).toBeUndefined();
  });

  it("agrees with the decoded path on random orders", () => {
    const rnd = seeded(7);
    const text = () => ["", "a", "Dish", "Ünïcødé", "🍕🍕", "x".repeat(300)][rnd(6)]!;
    for (let round = 0; round < 200; round++) {
      const orders: Partial<Order>[] = [];
      for (let i = rnd(5); i > 0; i--) {
        const o = order(rnd(1000), {
          restaurantName: text(),
          status: rnd(12),
          note: text(),
          items: Array.from({ length: rnd(4) }, () => ({
            name: text(),
            quantity: rnd(60) - 5,
            unitPrice: money(rnd(100_000) - 50_000),
          })),
        }) as Record<string, unknown>;
        for (const k of Object.keys(o)) if (k !== "id" && rnd(4) === 0) delete o[k];
        orders.push(o as Partial<Order>);
      }
      const bytes = reply(orders);
      expect(Buffer.from(mapping(bytes))).toEqual(Buffer.from(decoded(bytes)));
    }
  });

  it("leaves out fields it does not know, at any depth", () => {
    const w = new BinaryWriter();
    w.tag(1, WireType.LengthDelimited).fork();
    w.tag(1, WireType.LengthDelimited).string("order-1");
    w.tag(99, WireType.Varint).uint32(7); // unknown, inside the order
    w.tag(6, WireType.LengthDelimited).fork(); // an item
    w.tag(2, WireType.LengthDelimited).string("Dish");
    w.tag(50, WireType.Bit64).fixed64(1n); // unknown, inside the item
    w.join();
    w.join();
    w.tag(15, WireType.LengthDelimited).string("unknown at the top");
    const bytes = w.finish();
    expect(Buffer.from(mapping(bytes))).toEqual(Buffer.from(decoded(bytes)));
    const app = fromBinary(AppListSchema, mapping(bytes));
    expect(app.orders[0]!.id).toBe("order-1");
    expect(app.orders[0]!.items[0]!.name).toBe("Dish");
  });

  it("refuses bytes that are not a reply", () => {
    const full = reply([order(1)]);
    expect(() => mapping(full.subarray(0, full.length - 3))).toThrow();
    const w = new BinaryWriter();
    w.tag(1, WireType.Varint).uint32(5); // an order must be length-delimited
    expect(() => mapping(w.finish())).toThrow(/wire type 0 for a message/);
    const e = new BinaryWriter();
    e.tag(1, WireType.LengthDelimited).fork().tag(5, WireType.LengthDelimited).string("PLACED").join();
    expect(() => mapping(e.finish())).toThrow(/wire type 2 for an enum/);
  });
});

let registry: ReturnType<typeof createFileRegistry>;

/** Two messages, From and To, whose fields are given as [name, number, type, label?, typeName?]. */
function pair(
  from: [string, number, FieldDescriptorProto_Type, FieldDescriptorProto_Label?, string?][],
  to: [string, number, FieldDescriptorProto_Type, FieldDescriptorProto_Label?, string?][],
  syntax = "proto3",
): [DescMessage, DescMessage] {
  const fields = (fs: typeof from) =>
    fs.map(([name, number, type, label, typeName]) => ({
      name,
      jsonName: name,
      number,
      type,
      label: label ?? FieldDescriptorProto_Label.OPTIONAL,
      ...(typeName ? { typeName } : {}),
    }));
  const file = create(FileDescriptorProtoSchema, {
    name: "t.proto",
    package: "t",
    syntax,
    messageType: [
      { name: "From", field: fields(from) },
      { name: "Enums", field: fields([["e", 1, FieldDescriptorProto_Type.ENUM, undefined, ".t.E1"]]) },
      { name: "AppEnums", field: fields([["e", 3, FieldDescriptorProto_Type.ENUM, undefined, ".t.E2"]]) },
      { name: "To", field: fields(to) },
      {
        name: "Node",
        field: fields([
          ["child", 1, FieldDescriptorProto_Type.MESSAGE, undefined, ".t.Node"],
          ["name", 2, FieldDescriptorProto_Type.STRING],
        ]),
      },
      {
        name: "AppNode",
        field: fields([
          ["name", 1, FieldDescriptorProto_Type.STRING],
          ["child", 2, FieldDescriptorProto_Type.MESSAGE, undefined, ".t.AppNode"],
        ]),
      },
    ],
  });
  file.enumType.push(
    create(EnumDescriptorProtoSchema, {
      name: "E1",
      value: [
        { name: "E1_ZERO", number: 0 },
        { name: "E1_NEG", number: -1 },
        { name: "E1_ONE", number: 1 },
        { name: "E1_ONLY_HERE", number: 2 },
      ],
    }),
    create(EnumDescriptorProtoSchema, {
      name: "E2",
      value: [
        { name: "E2_ZERO", number: 0 },
        { name: "E2_ONE", number: -7 },
        { name: "E2_NEG", number: -2_000_000_000 },
      ],
    }),
  );
  registry = createFileRegistry(file, () => undefined);
  return [registry.getMessage("t.From")!, registry.getMessage("t.To")!];
}

describe("wireMapping", () => {
  const { STRING, INT32, INT64, MESSAGE } = FieldDescriptorProto_Type;
  const REPEATED = FieldDescriptorProto_Label.REPEATED;

  it("maps fields of the same name and type, under their new numbers", () => {
    const [from, to] = pair(
      [
        ["a", 1, STRING],
        ["drop", 2, INT32],
        ["b", 3, INT64],
        ["c", 4, INT32, REPEATED],
      ],
      [
        ["b", 1, INT64],
        ["a", 2, STRING],
        ["c", 3, INT32, REPEATED],
        ["new", 4, STRING],
      ],
    );
    const m = wireMapping(from, to)!;
    const msg = create(from, { a: "x", drop: 5, b: -3n, c: [1, 2, 300] } as never);
    const out = fromBinary(to, m(toBinary(from, msg))) as unknown as Record<string, unknown>;
    expect(out.a).toBe("x");
    expect(out.b).toBe(-3n);
    expect(out.c).toEqual([1, 2, 300]);
    expect(out.new).toBe("");
  });

  it("refuses a namesake of another type, or of another cardinality", () => {
    expect(wireMapping(...pair([["a", 1, STRING]], [["a", 1, INT32]]))).toBeUndefined();
    expect(wireMapping(...pair([["a", 1, INT32]], [["a", 1, INT64]]))).toBeUndefined();
    expect(wireMapping(...pair([["a", 1, INT32, REPEATED]], [["a", 1, INT32]]))).toBeUndefined();
  });

  it("maps enums of other types value by value under the same name, negative values included", () => {
    pair([], []);
    const from = registry.getMessage("t.Enums")!;
    const to = registry.getMessage("t.AppEnums")!;
    const m = wireMapping(from, to)!;
    const out = (e: number) =>
      fromBinary(to, m(toBinary(from, create(from, { e } as never)))) as unknown as { e: number };
    expect(out(1).e).toBe(-7); // ONE
    expect(out(-1).e).toBe(-2_000_000_000); // NEG, ten bytes on the wire each way
    expect(out(2).e).toBe(0); // a value the app's enum lacks
    expect(out(99).e).toBe(0); // a value neither knows
    expect(m(toBinary(from, create(from, { e: 2 } as never)))).toHaveLength(0); // zero: left off the wire
  });

  it("maps recursive messages of other types, and stops at a nesting limit", () => {
    const [from, to] = pair(
      [["root", 1, MESSAGE, undefined, ".t.Node"]],
      [["root", 1, MESSAGE, undefined, ".t.AppNode"]],
    );
    const m = wireMapping(from, to)!;
    const node = (depth: number): unknown => ({
      name: `n${depth}`,
      ...(depth > 0 ? { child: node(depth - 1) } : {}),
    });
    const out = fromBinary(to, m(toBinary(from, create(from, { root: node(3) } as never)))) as unknown as {
      root: { name: string; child: { name: string; child: { name: string } } };
    };
    expect(out.root.name).toBe("n3");
    expect(out.root.child.child.name).toBe("n1");
    // Deeper than protobuf's limit of 100: refused, as decoding refuses it.
    let inner = new BinaryWriter().tag(2, WireType.LengthDelimited).string("leaf").finish();
    for (let i = 0; i < 105; i++)
      inner = new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(inner).finish();
    expect(() => m(new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(inner).finish())).toThrow(
      /deeper than 100/,
    );
  });
});
