/** Parses a target ("host:port", "http://host:port", or a comma list of them) into base URLs. */
export function parseTarget(target: string): string[] {
  const endpoints = target
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => (/^https?:\/\//.test(t) ? t.replace(/\/+$/, "") : `http://${t}`));
  if (endpoints.length === 0) throw new Error(`client target ${JSON.stringify(target)} names no endpoint`);
  for (const e of endpoints) {
    const u = new URL(e);
    if (!u.port && u.protocol === "http:" && !/:\d+$/.test(e))
      throw new Error(`client target ${e} needs a port`);
  }
  return endpoints;
}

/**
 * Round-robin over endpoints, skipping those whose breaker is open for the method. The resilience issue
 * extends this (DNS re-resolution, power-of-two-choices, outlier ejection) behind the same `pick`.
 */
export class EndpointPicker {
  private next = 0;

  constructor(readonly endpoints: readonly string[]) {}

  pick(usable: (endpoint: string) => boolean): string {
    const n = this.endpoints.length;
    for (let i = 0; i < n; i++) {
      const e = this.endpoints[(this.next + i) % n]!;
      if (usable(e)) {
        this.next = (this.next + i + 1) % n;
        return e;
      }
    }
    // Every endpoint's breaker is open: return the next one, whose breaker fails the call fast.
    const e = this.endpoints[this.next % n]!;
    this.next = (this.next + 1) % n;
    return e;
  }
}
