/** The files of a new service (`pnpm new-service`): path -> content. The example owns "items". */
export function serviceTemplate(name: string, port: number): Record<string, string> {
  const P = name[0]!.toUpperCase() + name.slice(1);
  const pkg = `dispatch.${name}.v1`;
  const gen = `@dispatch/gen/dispatch/${name}/v1/${name}_pb.ts`;
  return {
    [`proto/dispatch/${name}/v1/${name}.proto`]: `syntax = "proto3";

package ${pkg};

import "google/protobuf/timestamp.proto";

// ${P}Service is the ${name} service. Item is an example: replace it with what ${name} owns.
service ${P}Service {
  // CreateItem stores a new item and returns it.
  rpc CreateItem(CreateItemRequest) returns (CreateItemResponse);
  // GetItem returns one item.
  rpc GetItem(GetItemRequest) returns (GetItemResponse) {
    option idempotency_level = NO_SIDE_EFFECTS;
  }
}

// ErrorReason is carried in google.rpc.ErrorInfo.reason (as the value's name) on failed calls.
enum ErrorReason {
  ERROR_REASON_UNSPECIFIED = 0;
  // No item has the requested id.
  ERROR_REASON_ITEM_NOT_FOUND = 1;
}

// Item is one record ${name} owns.
message Item {
  string id = 1;
  string name = 2;
  google.protobuf.Timestamp create_time = 3;
}

message CreateItemRequest {
  // 1 to 200 characters.
  string name = 1;
}

message CreateItemResponse {
  Item item = 1;
}

message GetItemRequest {
  string item_id = 1;
}

message GetItemResponse {
  Item item = 1;
}
`,
    [`services/${name}/package.json`]: `${JSON.stringify(
      {
        name: `@dispatch/${name}`,
        private: true,
        type: "module",
        scripts: { start: "tsx src/main.ts", "db:generate": "drizzle-kit generate" },
        dependencies: {
          "@bufbuild/protobuf": "2.17.0",
          "@connectrpc/connect": "2.2.0",
          "@dispatch/db": "workspace:*",
          "@dispatch/gen": "workspace:*",
          "@dispatch/runtime": "workspace:*",
          "drizzle-orm": "0.45.4",
        },
        devDependencies: { "@dispatch/testing": "workspace:*", "drizzle-kit": "0.31.11" },
      },
      null,
      2,
    )}\n`,
    [`services/${name}/drizzle.config.ts`]: `import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./src/store/schema.ts",
  out: "./migrations",
});
`,
    [`services/${name}/README.md`]: `# ${name}

The ${name} service. Contract: \`proto/dispatch/${name}/v1/${name}.proto\`.

| RPC          |                                     |
| ------------ | ----------------------------------- |
| \`CreateItem\` | stores an item (name: 1-200 chars)  |
| \`GetItem\`    | one item; NOT_FOUND with a reason   |

Owns \`items\`. Run alone: \`PORT=${port} pnpm --filter @dispatch/${name} start\`. Test:
\`pnpm vitest run services/${name}\`. Regenerate migrations after a schema change:
\`pnpm --filter @dispatch/${name} db:generate\`.
`,
    [`services/${name}/src/config.ts`]: `import { loadConfig, logLevel, optionalString, port, serverSettings } from "@dispatch/runtime";

/** ${P}'s environment, validated at startup. */
export function ${name}Config(env: NodeJS.ProcessEnv = process.env) {
  return loadConfig(
    {
      ...serverSettings(),
      PORT: port(${port}),
      ADMIN_PORT: port(${port + 1000}),
      DATABASE_URL: optionalString(),
      DATA_DIR: optionalString(),
      LOG_LEVEL: logLevel(),
    },
    env,
  );
}
`,
    [`services/${name}/src/main.ts`]: `import { fileURLToPath } from "node:url";
import { openDatabase } from "@dispatch/db";
import { createLogger, currentCall, isEntryPoint, runMain, type Server, serve } from "@dispatch/runtime";
import { ${name}Config } from "./config.ts";
import { Items } from "./domain/items.ts";
import { ${name}Rpc } from "./rpc.ts";
import { PgItemRepository } from "./store/item-repository.ts";
import { schema } from "./store/schema.ts";

/** Wiring only: config -> db -> domain -> serve(). Tests call it with their own env. */
export async function start${P}(env: NodeJS.ProcessEnv = process.env, handleSignals = false): Promise<Server> {
  const config = ${name}Config(env);
  const logger = createLogger({ name: "${name}", level: config.LOG_LEVEL });
  const database = await openDatabase({
    service: "${name}",
    url: config.DATABASE_URL,
    dataDir: config.DATA_DIR ?? ".data/${name}",
    schema,
    migrationsFolder: fileURLToPath(new URL("../migrations", import.meta.url)),
    signal: () => currentCall()?.signal,
  });
  return serve({
    name: "${name}",
    services: [${name}Rpc(new Items(new PgItemRepository(database.db)))],
    port: config.PORT,
    maxInFlight: config.MAX_IN_FLIGHT,
    shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
    adminPort: config.ADMIN_PORT,
    logger,
    readiness: () => database.ping(),
    handleSignals,
    onShutdown: () => database.close(),
  });
}

if (isEntryPoint(import.meta.url)) await runMain("${name}", () => start${P}(process.env, true));
`,
    [`services/${name}/src/domain/items.ts`]: `import { Code } from "@connectrpc/connect";
import { ErrorReason } from "${gen}";
import { DispatchError } from "@dispatch/runtime";

export interface Item {
  id: string;
  name: string;
  createdAt: Date;
}

/** What the domain needs from storage; src/store implements it. */
export interface ItemRepository {
  insert(name: string): Promise<Item>;
  find(id: string): Promise<Item | undefined>;
}

const domain = "${name}.dispatch";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The use cases: rules live here, pure TypeScript. */
export class Items {
  constructor(private readonly repo: ItemRepository) {}

  async create(name: string): Promise<Item> {
    const trimmed = name.trim();
    if (trimmed.length < 1 || trimmed.length > 200) {
      throw new DispatchError(Code.InvalidArgument, "name must be 1 to 200 characters", {
        domain,
        fieldViolations: [{ field: "name", description: "must be 1 to 200 characters" }],
      });
    }
    return this.repo.insert(trimmed);
  }

  async get(id: string): Promise<Item> {
    const item = UUID.test(id) ? await this.repo.find(id) : undefined;
    if (!item) {
      throw new DispatchError(Code.NotFound, \`item \${id} not found\`, {
        reason: ErrorReason[ErrorReason.ITEM_NOT_FOUND],
        domain,
        metadata: { item_id: id },
      });
    }
    return item;
  }
}
`,
    [`services/${name}/src/store/schema.ts`]: `import { pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

export const items = pgTable("items", {
  id: uuid("id").primaryKey().defaultRandom(),
  name: text("name").notNull(),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

export const schema = { items };
`,
    [`services/${name}/src/store/item-repository.ts`]: `import type { Database } from "@dispatch/db";
import { eq } from "drizzle-orm";
import type { Item, ItemRepository } from "../domain/items.ts";
import { items, type schema } from "./schema.ts";

export class PgItemRepository implements ItemRepository {
  constructor(private readonly db: Database<typeof schema>["db"]) {}

  async insert(name: string): Promise<Item> {
    const [row] = await this.db.insert(items).values({ name }).returning();
    return row!;
  }

  async find(id: string): Promise<Item | undefined> {
    const [row] = await this.db.select().from(items).where(eq(items.id, id)).limit(1);
    return row;
  }
}
`,
    [`services/${name}/src/rpc.ts`]: `import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ${P}Service } from "${gen}";
import type { ServiceImpl } from "@dispatch/runtime";
import type { Item, Items } from "./domain/items.ts";

/** The proto adapter: request -> use case -> response. Errors are DispatchErrors raised by the domain. */
export function ${name}Rpc(items: Items): [typeof ${P}Service, ServiceImpl<typeof ${P}Service>] {
  return [
    ${P}Service,
    {
      async createItem(req) {
        return { item: itemMsg(await items.create(req.name)) };
      },
      async getItem(req) {
        return { item: itemMsg(await items.get(req.itemId)) };
      },
    },
  ];
}

function itemMsg(i: Item) {
  return { id: i.id, name: i.name, createTime: timestampFromDate(i.createdAt) };
}
`,
    [`services/${name}/test/${name}.spec.ts`]: `import { Code } from "@connectrpc/connect";
import { ${P}Service } from "${gen}";
import type { Server } from "@dispatch/runtime";
import { createTestDatabase, statusOf, type TestDatabase, testClient } from "@dispatch/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { start${P} } from "../src/main.ts";

let db: TestDatabase;
let server: Server;
let client: ReturnType<typeof testClient<typeof ${P}Service>>;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await start${P}({
    PORT: "0",
    ADMIN_PORT: "0",
    DATA_DIR: "memory://",
    LOG_LEVEL: "warn",
    ...(db.url ? { DATABASE_URL: db.url } : {}),
  });
  client = testClient(${P}Service, server.port);
});

afterAll(async () => {
  await server?.shutdown();
  await db?.drop();
});

describe(\`${name} over gRPC (\${process.env.TEST_DATABASE_URL ? "postgres" : "pglite"})\`, () => {
  it("creates an item and reads it back", async () => {
    const { item } = await client.createItem({ name: "  first  " });
    expect(item?.name).toBe("first");
    expect(item?.id).toMatch(/^[0-9a-f-]{36}$/);
    const got = await client.getItem({ itemId: item!.id });
    expect(got.item).toEqual(item);
  });

  it("names the field of a bad request and answers NOT_FOUND with a reason", async () => {
    const bad = await statusOf(client.createItem({ name: "" }));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.fieldViolations.map((v) => v.field)).toEqual(["name"]);
    const missing = await statusOf(client.getItem({ itemId: "00000000-0000-4000-8000-000000000000" }));
    expect(missing.code).toBe(Code.NotFound);
    expect(missing.reason).toBe("ITEM_NOT_FOUND");
  });
});
`,
  };
}
