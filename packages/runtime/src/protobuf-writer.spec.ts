import { create, type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { FileDescriptorProtoSchema, StructSchema } from "@bufbuild/protobuf/wkt";
import { file_dispatch_app_v1_app } from "@dispatch/gen/dispatch/app/v1/app_pb.ts";
import {
  file_dispatch_orders_v1_orders,
  ListActiveOrdersResponseSchema,
  OrderStatus,
} from "@dispatch/gen/dispatch/orders/v1/orders_pb.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shareProtobufWriterBuffer, unshareProtobufWriterBuffer } from "./protobuf-writer.ts";

const money = (units: bigint, nanos = 0) => ({ currencyCode: "EUR", units, nanos });

function orders(count: number) {
  return create(ListActiveOrdersResponseSchema, {
    orders: Array.from({ length: count }, (_, i) => ({
      id: `0192f3a0-${String(i).padStart(4, "0")}-7abc-8def-0123456789ab`,
      userId: "0192f3a0-1bcd-7abc-8def-0123456789ab",
      restaurantId: "0192f3a0-2bcd-7abc-8def-0123456789ab",
      restaurantName: i % 2 ? "Trattoria Dispatch" : "Café Zürich — 東京",
      status: OrderStatus.PREPARING,
      items: Array.from({ length: 5 }, (_, j) => ({
        menuItemId: `item-${i}-${j}`,
        name: j % 2 ? "Margherita" : "Crème brûlée ".repeat(12),
        quantity: j + 1,
        unitPrice: money(BigInt(j) * 3n + 1n, 500_000_000),
        lineTotal: money(-BigInt(j) - 1n, -990_000_000),
      })),
      subtotal: money(42n),
      total: money(9_007_199_254_740_993n),
      note: "ring twice",
      createTime: { seconds: 1_764_000_000n + BigInt(i), nanos: i },
    })),
  });
}

/** Messages of every kind of field this repository's contracts use, from 16 bytes to over 64 KiB. */
const samples: [string, DescMessage, unknown][] = [
  ["orders list (3 orders)", ListActiveOrdersResponseSchema, orders(3)],
  ["orders list (120 orders, > 64 KiB)", ListActiveOrdersResponseSchema, orders(120)],
  ["empty orders list", ListActiveOrdersResponseSchema, orders(0)],
  ["orders.proto's descriptor", FileDescriptorProtoSchema, file_dispatch_orders_v1_orders.proto],
  ["app.proto's descriptor", FileDescriptorProtoSchema, file_dispatch_app_v1_app.proto],
  [
    "a Struct (maps, oneofs, doubles, nested lists)",
    StructSchema,
    create(StructSchema, {
      fields: {
        n: { kind: { case: "numberValue", value: -1.25e-7 } },
        s: { kind: { case: "stringValue", value: "é".repeat(300) } },
        b: { kind: { case: "boolValue", value: true } },
        l: {
          kind: {
            case: "listValue",
            value: { values: [{ kind: { case: "numberValue", value: Number.MAX_VALUE } }] },
          },
        },
      },
    }),
  ],
];

/** The library's own bytes for every sample, encoded before the writers share a buffer. */
let reference: Uint8Array[];

beforeAll(() => {
  unshareProtobufWriterBuffer();
  reference = samples.map(([, schema, msg]) => toBinary(schema, msg as never));
  expect(shareProtobufWriterBuffer()).toBe(true);
});

afterAll(() => {
  // Other files in this worker get the library as they would without this module.
  unshareProtobufWriterBuffer();
});

describe("shareProtobufWriterBuffer", () => {
  it("encodes every sample to the library's own bytes, again and again, in any order", () => {
    for (let round = 0; round < 3; round++) {
      const order = round === 1 ? [...samples.keys()].reverse() : [...samples.keys()];
      for (const i of order) {
        const [name, schema, msg] = samples[i]!;
        expect(Buffer.from(toBinary(schema, msg as never)).toString("hex"), name).toBe(
          Buffer.from(reference[i]!).toString("hex"),
        );
      }
    }
    expect(reference[1]!.length).toBeGreaterThan(64 * 1024);
  });

  it("returns bytes of their own: a later encoding does not change an earlier result", () => {
    const first = toBinary(ListActiveOrdersResponseSchema, orders(3));
    const copy = Uint8Array.from(first);
    toBinary(FileDescriptorProtoSchema, file_dispatch_app_v1_app.proto);
    toBinary(ListActiveOrdersResponseSchema, orders(1));
    expect(first).toEqual(copy);
    expect(first.buffer.byteLength).toBe(first.length);
    const decoded: MessageShape<typeof ListActiveOrdersResponseSchema> = fromBinary(
      ListActiveOrdersResponseSchema,
      first,
    );
    expect(decoded.orders.map((o) => o.restaurantName)).toEqual([
      "Café Zürich — 東京",
      "Trattoria Dispatch",
      "Café Zürich — 東京",
    ]);
  });

  it("keeps a writer correct when another takes the buffer over mid-message", () => {
    const build = (interleave: () => void) => {
      const w = new BinaryWriter();
      w.tag(1, 2).fork().string("before").uint32(7);
      interleave();
      w.tag(2, 2).fork().string("nested, after the takeover").join().sfixed64(-5n).join();
      interleave();
      w.double(Math.PI).string("tail");
      return w.finish();
    };
    unshareProtobufWriterBuffer();
    const expected = build(() => undefined);
    shareProtobufWriterBuffer();
    const seen: Uint8Array[] = [];
    const got = build(() => seen.push(toBinary(ListActiveOrdersResponseSchema, orders(2))));
    expect(Buffer.from(got).toString("hex")).toBe(Buffer.from(expected).toString("hex"));
    expect(seen.map((b) => fromBinary(ListActiveOrdersResponseSchema, b).orders.length)).toEqual([2, 2]);
  });

  it("keeps a writer that was left unfinished, and a writer used for a second message", () => {
    const left = new BinaryWriter().tag(1, 2).fork().string("left open");
    const bad = orders(1);
    (bad.orders[0]!.items[3] as { quantity: number }).quantity = 1.5;
    expect(() => toBinary(ListActiveOrdersResponseSchema, bad)).toThrow(/int32/);
    const next = toBinary(ListActiveOrdersResponseSchema, orders(1));
    expect(fromBinary(ListActiveOrdersResponseSchema, next).orders[0]!.note).toBe("ring twice");
    expect(Buffer.from(left.join().finish()).toString("hex")).toBe(
      `0a0a09${Buffer.from("left open").toString("hex")}`,
    );

    const reused = new BinaryWriter();
    const a = reused.string("first").finish();
    toBinary(ListActiveOrdersResponseSchema, orders(1));
    const b = reused.string("second").finish();
    expect([Buffer.from(a).toString(), Buffer.from(b).toString()]).toEqual(["\x05first", "\x06second"]);
  });
});
