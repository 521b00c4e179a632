/**
 * One way to read configuration: each service declares its variables with these combinators;
 * loadConfig validates them all and fails once, naming every bad or missing variable.
 */

export interface Setting<T> {
  parse(raw: string | undefined): { value: T } | { error: string };
}

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join("; ")}`);
  }
}

export function loadConfig<S extends Record<string, Setting<unknown>>>(
  spec: S,
  env: Record<string, string | undefined> = process.env,
): { [K in keyof S]: S[K] extends Setting<infer T> ? T : never } {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, setting] of Object.entries(spec)) {
    const raw = env[name];
    const r = setting.parse(raw === "" ? undefined : raw);
    if ("error" in r) problems.push(`${name} ${r.error}`);
    else out[name] = r.value;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out as { [K in keyof S]: S[K] extends Setting<infer T> ? T : never };
}

/** A TCP port; 0 asks the OS for a free one. */
export function port(fallback?: number): Setting<number> {
  return {
    parse(raw) {
      if (raw === undefined) return fallback === undefined ? { error: "is required" } : { value: fallback };
      const n = Number(raw);
      return Number.isInteger(n) && n >= 0 && n <= 65535
        ? { value: n }
        : { error: `must be an integer 0-65535 (got ${JSON.stringify(raw)})` };
    },
  };
}

export function integer(
  fallback: number,
  min = Number.MIN_SAFE_INTEGER,
  max = Number.MAX_SAFE_INTEGER,
): Setting<number> {
  return {
    parse(raw) {
      if (raw === undefined) return { value: fallback };
      const n = Number(raw);
      return Number.isInteger(n) && n >= min && n <= max
        ? { value: n }
        : { error: `must be an integer ${min}-${max} (got ${JSON.stringify(raw)})` };
    },
  };
}

export function optionalString(): Setting<string | undefined> {
  return { parse: (raw) => ({ value: raw }) };
}

/** Required unless a fallback is given. */
export function requiredString(fallback?: string): Setting<string> {
  return {
    parse(raw) {
      if (raw !== undefined) return { value: raw };
      return fallback === undefined ? { error: "is required" } : { value: fallback };
    },
  };
}

export function oneOf<const T extends string>(values: readonly T[], fallback: T): Setting<T> {
  return {
    parse(raw) {
      if (raw === undefined) return { value: fallback };
      return (values as readonly string[]).includes(raw)
        ? { value: raw as T }
        : { error: `must be one of ${values.join(", ")} (got ${JSON.stringify(raw)})` };
    },
  };
}

export function bool(fallback: boolean): Setting<boolean> {
  return {
    parse(raw) {
      if (raw === undefined) return { value: fallback };
      if (["true", "1", "yes"].includes(raw)) return { value: true };
      if (["false", "0", "no"].includes(raw)) return { value: false };
      return { error: `must be true or false (got ${JSON.stringify(raw)})` };
    },
  };
}

/** LOG_LEVEL: pino's levels, default info. */
export function logLevel(fallback = "info"): Setting<string> {
  return oneOf(["fatal", "error", "warn", "info", "debug", "trace", "silent"], fallback);
}

/** Settings every service's gRPC server shares: load shedding and the drain at shutdown. */
export function serverSettings() {
  return {
    /** Calls in flight above which new ones are shed with RESOURCE_EXHAUSTED. */
    MAX_IN_FLIGHT: integer(1000, 1, 1_000_000),
    /** How long a SIGTERM waits for calls in flight before cancelling them. */
    SHUTDOWN_GRACE_MS: integer(10_000, 0, 600_000),
  };
}
