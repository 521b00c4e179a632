import {
  create,
  createFileRegistry,
  type DescMessage,
  fromBinary,
  toBinary,
  toJsonString,
} from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  TimestampSchema,
  timestampFromMs,
} from "@bufbuild/protobuf/wkt";
import {
  ListActiveOrdersResponseSchema as AppListSchema,
  type OrderStatus as AppStatus,
  GetHomeResponseSchema,
} from "@dispatch/gen/dispatch/app/v1/app_pb.ts";
import { ListActiveOrdersResponseSchema, OrderStatus } from "@dispatch/gen/dispatch/orders/v1/orders_pb.ts";
import { describe, expect, it } from "vitest";
import { wireJson } from "../src/wire-json.ts";
import { wireMapping } from "../src/wire-mapping.ts";
import { money, order, reply, seeded } from "./active-orders.ts";

/** What the gateway answered before: the app's message decoded, then protobuf-es's JSON. */
function decodedJson(schema: DescMessage, bytes: Uint8Array): string {
  return toJsonString(schema, fromBinary(schema, bytes));
}

/** Both ways agree, and the wire took it. */
function same(schema: DescMessage, bytes: Uint8Array, name?: string): void {
  const json = wireJson(schema)!(bytes);
  expect(json, name).toBeDefined();
  expect(json!.toString("utf8"), name).toBe(decodedJson(schema, bytes));
}

const mapping = wireMapping(ListActiveOrdersResponseSchema, AppListSchema)!;
const appList = (orders: unknown[]) => toBinary(AppListSchema, create(AppListSchema, { orders } as never));

describe("Connect JSON written from the app's active orders on the wire", () => {
  it("is the JSON toJsonString writes from the decoded message, byte for byte", () => {
    const cases: [string, Uint8Array][] = [
      ["no orders", mapping(reply([]))],
      ["three full orders, as the gateway maps them", mapping(reply([order(1), order(2), order(3)]))],
      [
        "every status",
        mapping(
          reply(
            Object.values(OrderStatus)
              .filter((s) => typeof s === "number")
              .map((s, i) => order(i, { status: s })),
          ),
        ),
      ],
      ["a status number the app's enum lacks", appList([{ id: "a", status: 42 as AppStatus }])],
      ["a negative status number", appList([{ id: "a", status: -3 as AppStatus }])],
      [
        "text beyond ASCII, and text to escape",
        mapping(
          reply([
            order(1, {
              restaurantName: 'Café "Ünïcødé" 🍕 \\ back',
              items: [{ name: "Pho bò – 大\n\t\u0001\u001f\u007f\u2028" }],
              deliveryAddress: { line1: "\uFEFFleading BOM", city: "" },
            }),
          ]),
        ),
      ],
      [
        "fields left unset",
        mapping(
          reply([{ id: "x" }, order(2, { deliveryAddress: undefined, createTime: undefined, items: [] })]),
        ),
      ],
      [
        "large, negative and zero amounts",
        mapping(
          reply([
            order(1, {
              total: money(9_007_199_254_740_993n, "JPY"),
              subtotal: money(-5),
              deliveryFee: money(0),
              items: [
                { name: "max", unitPrice: money(9_223_372_036_854_775_807n) },
                { name: "min", unitPrice: money(-9_223_372_036_854_775_808n) },
                { name: "-2^53", unitPrice: money(-9_007_199_254_740_992n) },
                { name: "-2^53-1", unitPrice: money(-9_007_199_254_740_993n) },
                { name: "2^53-1", unitPrice: money(9_007_199_254_740_991n) },
              ],
            }),
          ]),
        ),
      ],
      [
        "timestamps of every precision, before 1970 and at JSON's limits",
        appList([
          { id: "s", createTime: { seconds: 1_764_000_000n, nanos: 0 } },
          { id: "ms", createTime: { seconds: 1_764_000_000n, nanos: 123_000_000 } },
          { id: "us", createTime: { seconds: 1_764_000_000n, nanos: 123_456_000 } },
          { id: "ns", createTime: { seconds: 1_764_000_000n, nanos: 123_456_789 } },
          { id: "1ns", createTime: { seconds: 0n, nanos: 1 } },
          { id: "epoch", createTime: { seconds: 0n, nanos: 0 }, updateTime: timestampFromMs(-1) },
          { id: "before", createTime: { seconds: -1_000_000_000n, nanos: 5 } },
          { id: "min", createTime: { seconds: -62_135_596_800n, nanos: 0 } },
          { id: "max", createTime: { seconds: 253_402_300_799n, nanos: 999_999_999 } },
        ]),
      ],
      [
        "doubles: zero, negative zero, NaN, the infinities, the smallest and largest",
        appList(
          [
            0,
            -0,
            Number.NaN,
            Number.POSITIVE_INFINITY,
            Number.NEGATIVE_INFINITY,
            5e-324,
            1.7976931348623157e308,
            0.1,
          ].map((v, i) => ({ id: `g${i}`, deliveryAddress: { location: { latitude: v, longitude: -v } } })),
        ),
      ],
    ];
    for (const [name, bytes] of cases) same(AppListSchema, bytes, name);
  });

  it("agrees with the decoded path on random orders", () => {
    const rnd = seeded(11);
    const text = () =>
      ["", "a", "Dish", "Ünïcødé", "🍕🍕", "x".repeat(300), 'say "hi"', "a\\b", "line\nbreak", "\u0000"][
        rnd(10)
      ]!;
    const amount = () =>
      [BigInt(rnd(100_000) - 50_000), 2n ** 63n - 1n - BigInt(rnd(1000)), -(2n ** 53n) - BigInt(rnd(1000))][
        rnd(3)
      ]!;
    for (let round = 0; round < 200; round++) {
      const orders: Record<string, unknown>[] = [];
      for (let i = rnd(5); i > 0; i--) {
        const o: Record<string, unknown> = order(rnd(1000), {
          restaurantName: text(),
          status: rnd(12) - 1,
          items: Array.from({ length: rnd(4) }, () => ({
            menuItemId: text(),
            name: text(),
            quantity: rnd(60) - 5,
            unitPrice: money(amount()),
            lineTotal: rnd(2) ? money(amount(), text()) : undefined,
          })),
          total: money(amount()),
          deliveryAddress: {
            line1: text(),
            line2: text(),
            location: { latitude: (rnd(18_000) - 9000) / 100, longitude: rnd(3) ? 0 : -0 },
          },
          createTime: { seconds: BigInt(rnd(2_000_000_000) - 1_000_000_000), nanos: rnd(4) * 250_000_000 },
          updateTime: { seconds: BigInt(rnd(2_000_000_000)), nanos: rnd(1_000_000_000) },
        });
        for (const k of Object.keys(o)) if (k !== "id" && rnd(4) === 0) delete o[k];
        orders.push(o);
      }
      same(AppListSchema, appList(orders));
      same(AppListSchema, mapping(reply(orders)));
    }
  });

  it("writes timestamps across JSON's whole range as protobuf-es does", () => {
    const rnd = seeded(5);
    const min = -62_135_596_800; // 0001-01-01T00:00:00Z
    const max = 253_402_300_799; // 9999-12-31T23:59:59Z
    const times: { seconds: bigint; nanos: number }[] = [];
    for (let i = 0; i < 3000; i++) {
      // Anywhere in the range; and near the days that try a calendar: leap days, the turns of centuries.
      const near = [951_782_400, 4_107_456_000, -2_203_891_200, 68_169_600, -62_104_060_800][rnd(5)]!;
      const seconds = rnd(2)
        ? min + Math.floor((max - min) * (rnd(1_000_000) / 1_000_000))
        : near + rnd(200_000) - 100_000;
      const nanos = [0, rnd(1000) * 1_000_000, rnd(1_000_000) * 1000, rnd(1_000_000_000)][rnd(4)]!;
      times.push({ seconds: BigInt(Math.min(max, Math.max(min, seconds))), nanos });
    }
    times.push({ seconds: BigInt(min), nanos: 0 }, { seconds: BigInt(max), nanos: 999_999_999 });
    for (let i = 0; i < times.length; i += 50)
      same(
        AppListSchema,
        appList(times.slice(i, i + 50).map((t, j) => ({ id: `t${j}`, createTime: t, updateTime: t }))),
      );
  });

  it("leaves out fields it does not know, at any depth", () => {
    const w = new BinaryWriter();
    w.tag(1, WireType.LengthDelimited).fork();
    w.tag(1, WireType.LengthDelimited).string("order-1");
    w.tag(99, WireType.Varint).uint32(7); // unknown, inside the order
    w.tag(5, WireType.LengthDelimited).fork(); // an item
    w.tag(2, WireType.LengthDelimited).string("Dish");
    w.tag(50, WireType.Bit64).fixed64(1n); // unknown, inside the item
    w.join();
    w.tag(300, WireType.Bit32).fixed32(3); // unknown, between two items
    w.tag(5, WireType.LengthDelimited).fork().tag(3, WireType.Varint).int32(2).join();
    w.tag(10, WireType.LengthDelimited).fork(); // a timestamp with a field it lacks
    w.tag(1, WireType.Varint).int64(1_764_000_000n).tag(7, WireType.Varint).uint32(1);
    w.join();
    w.join();
    w.tag(15, WireType.LengthDelimited).string("unknown at the top");
    same(AppListSchema, w.finish());
  });

  it("returns undefined for what canonical encoders do not write, and the decoded path then answers", () => {
    const json = wireJson(AppListSchema)!;
    const notTaken = (name: string, bytes: Uint8Array) => {
      expect(json(bytes), name).toBeUndefined();
      // What the gateway then does: decode (which may throw: the reply is an error) and write JSON.
      let decoded: string | Error;
      try {
        decoded = decodedJson(AppListSchema, bytes);
      } catch (err) {
        decoded = err as Error;
      }
      return decoded;
    };
    const inOrder = (write: (w: BinaryWriter) => void) => {
      const w = new BinaryWriter();
      w.tag(1, WireType.LengthDelimited).fork();
      write(w);
      w.join();
      return w.finish();
    };
    // Decodable, but not in the order JSON is written: fields backwards, a field twice, a split list.
    expect(
      notTaken(
        "fields backwards",
        inOrder((w) =>
          w.tag(2, WireType.LengthDelimited).string("r").tag(1, WireType.LengthDelimited).string("o"),
        ),
      ),
    ).toBe('{"orders":[{"id":"o","restaurantId":"r"}]}');
    expect(
      notTaken(
        "a singular field twice",
        inOrder((w) =>
          w.tag(1, WireType.LengthDelimited).string("a").tag(1, WireType.LengthDelimited).string("b"),
        ),
      ),
    ).toBe('{"orders":[{"id":"b"}]}');
    expect(
      notTaken(
        "a list split by another field",
        inOrder((w) =>
          w
            .tag(5, WireType.LengthDelimited)
            .fork()
            .join()
            .tag(6, WireType.LengthDelimited)
            .fork()
            .join()
            .tag(5, WireType.LengthDelimited)
            .fork()
            .join(),
        ),
      ),
    ).toBe('{"orders":[{"items":[{},{}],"subtotal":{}}]}');
    // Not decodable: the decode's error is the answer, as before.
    const full = mapping(reply([order(1)]));
    expect(notTaken("truncated", full.subarray(0, full.length - 3))).toBeInstanceOf(Error);
    expect(
      notTaken("an order as a number", new BinaryWriter().tag(1, WireType.Varint).uint32(5).finish()),
    ).toBeInstanceOf(Error);
    expect(
      notTaken(
        "a status as text",
        inOrder((w) => w.tag(4, WireType.LengthDelimited).string("PLACED")),
      ),
    ).toBeInstanceOf(Error);
    expect(
      notTaken(
        "invalid UTF-8",
        inOrder((w) => w.tag(1, WireType.LengthDelimited).bytes(new Uint8Array([0x61, 0xff]))),
      ),
    ).toBeInstanceOf(Error);
    // Decodable, but JSON has no text for it: toJsonString's error is the answer.
    const year10000 = appList([{ id: "late", createTime: { seconds: 253_402_300_800n, nanos: 0 } }]);
    expect(notTaken("a timestamp after 9999", year10000)).toBeInstanceOf(Error);
    const negativeNanos = appList([{ id: "n", createTime: { seconds: 1n, nanos: -1 } }]);
    expect(notTaken("negative nanos", negativeNanos)).toBeInstanceOf(Error);
  });
});

// A message of every scalar type, in proto3 (implicit presence) and proto2 (explicit presence).
const { LABEL_OPTIONAL, LABEL_REPEATED } = {
  LABEL_OPTIONAL: FieldDescriptorProto_Label.OPTIONAL,
  LABEL_REPEATED: FieldDescriptorProto_Label.REPEATED,
};
const T = FieldDescriptorProto_Type;
const SCALARS: [string, FieldDescriptorProto_Type][] = [
  ["f_double", T.DOUBLE],
  ["f_float", T.FLOAT],
  ["f_int64", T.INT64],
  ["f_uint64", T.UINT64],
  ["f_int32", T.INT32],
  ["f_fixed64", T.FIXED64],
  ["f_fixed32", T.FIXED32],
  ["f_bool", T.BOOL],
  ["f_string", T.STRING],
  ["f_bytes", T.BYTES],
  ["f_uint32", T.UINT32],
  ["f_sfixed32", T.SFIXED32],
  ["f_sfixed64", T.SFIXED64],
  ["f_sint32", T.SINT32],
  ["f_sint64", T.SINT64],
];

function registryOf(syntax: "proto2" | "proto3", extra: object[] = []) {
  const file = create(FileDescriptorProtoSchema, {
    name: `${syntax}.proto`,
    package: "t",
    syntax,
    dependency: ["google/protobuf/timestamp.proto"],
    enumType: [
      {
        name: "Color",
        value: [
          { name: "COLOR_UNSET", number: 0 },
          { name: "COLOR_RED", number: 1 },
          { name: "COLOR_MINUS", number: -1 },
        ],
      },
    ],
    messageType: [
      {
        name: "Scalars",
        field: [
          ...SCALARS.map(([name, type], i) => ({
            name,
            jsonName: camel(name),
            number: i + 1,
            type,
            label: LABEL_OPTIONAL,
          })),
          {
            name: "color",
            jsonName: "color",
            number: 16,
            type: T.ENUM,
            typeName: ".t.Color",
            label: LABEL_OPTIONAL,
          },
          { name: "names", jsonName: "names", number: 17, type: T.STRING, label: LABEL_REPEATED },
          { name: "blobs", jsonName: "blobs", number: 18, type: T.BYTES, label: LABEL_REPEATED },
          {
            name: "child",
            jsonName: "child",
            number: 19,
            type: T.MESSAGE,
            typeName: ".t.Scalars",
            label: LABEL_OPTIONAL,
          },
          {
            name: "at",
            jsonName: "at",
            number: 20,
            type: T.MESSAGE,
            typeName: ".google.protobuf.Timestamp",
            label: LABEL_OPTIONAL,
          },
          { name: "far_away", jsonName: "farAway", number: 1000, type: T.INT32, label: LABEL_OPTIONAL },
        ],
      },
      ...extra,
    ],
  });
  return createFileRegistry(file, (name) =>
    name === "google/protobuf/timestamp.proto" ? TimestampSchema.file : undefined,
  );
}

function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

describe("wireJson", () => {
  const proto3 = registryOf("proto3").getMessage("t.Scalars")!;
  const proto2 = registryOf("proto2").getMessage("t.Scalars")!;

  it("writes every scalar type as toJsonString does, with implicit and with explicit presence", () => {
    const extremes: Record<string, unknown[]> = {
      fDouble: [0, -0, 1.5, -2.25e-300, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY],
      fFloat: [0, -0, 0.1, 3.4028234663852886e38, Number.NaN, Number.NEGATIVE_INFINITY],
      fInt64: [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n],
      fUint64: [0n, 1n, 2n ** 64n - 1n, 2n ** 53n, 2n ** 53n - 1n],
      fInt32: [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 9, 10],
      fFixed64: [0n, 2n ** 64n - 1n, 12345n],
      fFixed32: [0, 2 ** 32 - 1, 7],
      fBool: [false, true],
      fString: ["", "plain", 'q"\\', "\u0000\u001f", "Ünï 🍕"],
      fBytes: [
        new Uint8Array(),
        new Uint8Array([0]),
        new Uint8Array([0xfb, 0xff, 0xfe]),
        new Uint8Array(100).fill(7),
      ],
      fUint32: [0, 2 ** 32 - 1, 128],
      fSfixed32: [0, -(2 ** 31), 2 ** 31 - 1],
      fSfixed64: [0n, -(2n ** 63n), 2n ** 63n - 1n, -1n],
      fSint32: [0, -1, 1, -(2 ** 31), 2 ** 31 - 1],
      fSint64: [0n, -1n, 1n, -(2n ** 63n), 2n ** 63n - 1n, 2n ** 52n, -(2n ** 52n) - 1n, 2n ** 53n],
      color: [0, 1, -1, 5, -5],
      names: [[], ["a"], ["", "b", 'c"']],
      blobs: [[], [new Uint8Array([1, 2, 3]), new Uint8Array()]],
      at: [undefined, { seconds: 1n, nanos: 5 }],
      farAway: [0, 77],
    };
    const rnd = seeded(3);
    for (const schema of [proto3, proto2]) {
      // Each value alone, then random mixes of them, nested once.
      for (const [key, values] of Object.entries(extremes))
        for (const v of values)
          same(schema, toBinary(schema, create(schema, { [key]: v } as never)), `${key} ${String(v)}`);
      for (let round = 0; round < 100; round++) {
        const pick = () => {
          const init: Record<string, unknown> = {};
          for (const [key, values] of Object.entries(extremes))
            if (rnd(2)) init[key] = values[rnd(values.length)];
          return init;
        };
        same(
          schema,
          toBinary(schema, create(schema, { ...pick(), child: rnd(2) ? pick() : undefined } as never)),
        );
      }
    }
  });

  it("writes explicitly present zeros, and leaves implicit ones out even when they are on the wire", () => {
    const zeros = new BinaryWriter()
      .tag(1, WireType.Bit64)
      .double(0)
      .tag(3, WireType.Varint)
      .int64(0)
      .tag(8, WireType.Varint)
      .bool(false)
      .tag(9, WireType.LengthDelimited)
      .string("")
      .tag(16, WireType.Varint)
      .int32(0)
      .finish();
    same(proto3, zeros);
    same(proto2, zeros);
    expect(wireJson(proto3)!(zeros)!.toString()).toBe("{}");
    expect(wireJson(proto2)!(zeros)!.toString()).toBe(
      '{"fDouble":0,"fInt64":"0","fBool":false,"fString":"","color":"COLOR_UNSET"}',
    );
    // A bool written with a long varint is still a bool.
    same(
      proto3,
      new BinaryWriter()
        .tag(8, WireType.Varint)
        .uint64(2n ** 40n)
        .finish(),
    );
  });

  it("stops at the nesting limit protobuf-es decodes to", () => {
    const nested = (depth: number): Uint8Array => {
      let bytes: Uint8Array = new BinaryWriter().tag(5, WireType.Varint).int32(1).finish();
      for (let i = 0; i < depth; i++)
        bytes = new BinaryWriter().tag(19, WireType.LengthDelimited).bytes(bytes).finish();
      return bytes;
    };
    same(proto3, nested(50));
    expect(wireJson(proto3)!(nested(150))).toBeUndefined();
  });

  it("takes the app's replies, and refuses what it does not write", () => {
    expect(wireJson(AppListSchema)).toBeDefined();
    expect(wireJson(GetHomeResponseSchema)).toBeUndefined(); // its `missing` is a list of enums
    expect(wireJson(TimestampSchema)).toBeUndefined();
    const refused = registryOf("proto3", [
      {
        name: "Mapped",
        field: [
          {
            name: "m",
            jsonName: "m",
            number: 1,
            type: T.MESSAGE,
            typeName: ".t.Mapped.MEntry",
            label: LABEL_REPEATED,
          },
        ],
        nestedType: [
          {
            name: "MEntry",
            options: { mapEntry: true },
            field: [
              { name: "key", jsonName: "key", number: 1, type: T.STRING, label: LABEL_OPTIONAL },
              { name: "value", jsonName: "value", number: 2, type: T.STRING, label: LABEL_OPTIONAL },
            ],
          },
        ],
      },
      {
        name: "OneOf",
        oneofDecl: [{ name: "choice" }],
        field: [
          { name: "a", jsonName: "a", number: 1, type: T.STRING, label: LABEL_OPTIONAL, oneofIndex: 0 },
        ],
      },
      {
        name: "Numbers",
        field: [{ name: "n", jsonName: "n", number: 1, type: T.INT32, label: LABEL_REPEATED }],
      },
      {
        name: "HoldsOneOf",
        field: [
          {
            name: "o",
            jsonName: "o",
            number: 1,
            type: T.MESSAGE,
            typeName: ".t.OneOf",
            label: LABEL_OPTIONAL,
          },
        ],
      },
    ]);
    for (const name of ["t.Mapped", "t.OneOf", "t.Numbers", "t.HoldsOneOf"])
      expect(wireJson(refused.getMessage(name)!), name).toBeUndefined();
  });
});
