/** Where the scenarios' results go: docs/BENCHMARKS.md, one section per scenario, and the machine line. */
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { machineStateLine } from "./machine-state.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

/** A section's "Machine:" line: the hardware and versions, then its state before the load (machine-state.ts). */
export async function machine(h2: string): Promise<string> {
  const cpu = os.cpus()[0]?.model.trim() ?? "unknown CPU";
  return `${cpu}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${process.version}, ${h2}; ${await machineStateLine()}`;
}

export function writeSection(title: string, content: string): void {
  const file = `${root}/docs/BENCHMARKS.md`;
  let doc: string;
  try {
    doc = readFileSync(file, "utf8");
  } catch {
    doc =
      "# Benchmarks\n\nProduced by `pnpm bench`; each section is rewritten by the scenario that owns it.\n";
  }
  const heading = `## ${title}`;
  // The heading's whole line: "## A/B …" must not find "## A/B …: place order".
  const at = doc.indexOf(`\n${heading}\n`);
  const start = at === -1 ? -1 : at + 1;
  if (start === -1) {
    doc = `${doc.trimEnd()}\n\n${heading}\n\n${content.trim()}\n`;
  } else {
    const next = doc.indexOf("\n## ", start + heading.length);
    doc = `${doc.slice(0, start)}${heading}\n\n${content.trim()}\n${next === -1 ? "" : doc.slice(next)}`;
  }
  writeFileSync(file, doc);
}
