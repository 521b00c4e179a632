import { Code } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus as Status,
} from "@dispatch/gen/grpc/health/v1/health_pb.ts";
import { DispatchError } from "./errors.ts";
import type { ServiceRegistration } from "./handler.ts";

export type ServingStatus = "SERVING" | "NOT_SERVING";

/** Serving status per service name ("" is the whole server), with change notification for Watch. */
export class HealthRegistry {
  private readonly statuses = new Map<string, Status>();
  private waiters = new Set<() => void>();
  private closed = false;

  set(service: string, status: ServingStatus): void {
    this.statuses.set(service, status === "SERVING" ? Status.SERVING : Status.NOT_SERVING);
    this.notify();
  }

  setAll(status: ServingStatus): void {
    for (const name of this.statuses.keys()) this.set(name, status);
  }

  get(service: string): Status | undefined {
    return this.statuses.get(service);
  }

  entries(): [string, Status][] {
    return [...this.statuses];
  }

  /** Ends every Watch stream (at shutdown, after the final status went out). */
  close(): void {
    this.closed = true;
    this.notify();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Resolves at the next change, at close, or when `signal` aborts. */
  changed(signal: AbortSignal): Promise<void> {
    if (this.closed || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.waiters.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      this.waiters.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const w of waiters) w();
  }
}

/** grpc.health.v1.Health over a registry. */
export function healthService(registry: HealthRegistry): ServiceRegistration<typeof Health> {
  return [
    Health,
    {
      check(req) {
        const status = registry.get(req.service);
        if (status === undefined)
          throw new DispatchError(Code.NotFound, `unknown service ${JSON.stringify(req.service)}`);
        return { status };
      },
      async *watch(req, ctx) {
        let last: Status | undefined;
        for (;;) {
          const status = registry.get(req.service) ?? Status.SERVICE_UNKNOWN;
          if (status !== last) {
            yield { status };
            last = status;
          }
          if (registry.isClosed || ctx.signal.aborted) return;
          await registry.changed(ctx.signal);
        }
      },
      list() {
        return {
          statuses: Object.fromEntries(registry.entries().map(([name, status]) => [name, { status }])),
        };
      },
    },
  ];
}
