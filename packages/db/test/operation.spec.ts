import { describe, expect, it } from "vitest";
import { operationOf } from "../src/cancellation.ts";

describe("operationOf (the operation label of dispatch_db_query_seconds)", () => {
  it("is the first keyword of a plain statement", () => {
    expect(operationOf('select "id" from "orders" where "id" = $1')).toBe("select");
    expect(operationOf("  INSERT into outbox values ($1)")).toBe("insert");
    expect(operationOf("begin")).toBe("begin");
    expect(operationOf("vacuum orders")).toBe("other");
  });

  it("is the main statement's verb for a WITH statement, whatever its CTEs do", () => {
    const q = `with placed as (insert into orders (id) values ($1) returning id),
      lines as (update x set "select" = 'a)(' where y = (select 1))
      insert into history (order_id) select id from placed returning id`;
    expect(operationOf(q)).toBe("insert");
    expect(operationOf("with recent as (select id from orders) select * from recent")).toBe("select");
    expect(operationOf("with gone as (delete from outbox returning id) update t set n = 1")).toBe("update");
    expect(operationOf("with broken as (select 1")).toBe("with");
  });
});
