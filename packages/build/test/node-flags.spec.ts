import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { services } from "../src/dockerfile.ts";
import { NODE_FLAGS, nodeFlagsFor } from "../src/node-flags.ts";

const SERVICES = services.map((s) => s.service);

describe("node flags", () => {
  it("gives every service the common flags, and the gateway no allocation-site pretenuring besides", () => {
    for (const svc of SERVICES.filter((s) => s !== "gateway")) expect(nodeFlagsFor(svc)).toEqual(NODE_FLAGS);
    expect(nodeFlagsFor("gateway")).toEqual([...NODE_FLAGS, "--no-allocation-site-pretenuring"]);
  });

  it("are flags this node accepts, for every service (node exits on one it does not know)", () => {
    for (const svc of SERVICES) {
      // The script from stdin, so node's own arguments are the flags alone.
      const out = execFileSync(process.execPath, [...nodeFlagsFor(svc), "-"], {
        encoding: "utf8",
        input: "process.stdout.write(process.execArgv.join(' '))",
      });
      expect(out.trim()).toBe(nodeFlagsFor(svc).join(" "));
    }
  });
});
