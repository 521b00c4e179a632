import type { AnyDb } from "@dispatch/db";
import { counter } from "@dispatch/runtime";
import type { Logger } from "pino";
import { deleteOlderThan } from "./prune.ts";

export interface ProcessedEventsRetentionOptions {
  db: AnyDb;
  logger: Logger;
  /**
   * How long a consumer remembers an event it applied. Default 24 h. An event sent again later than
   * this is applied again; a relay sends an event again to a subscriber that took it only when it
   * stopped between the answer and its record of it, within its lease (30 s by default).
   */
  retentionMs?: number;
  /** How often the old ids are deleted. Default 60 s. */
  intervalMs?: number;
}

/**
 * Keeps a consumer's processed_events (consumeOnce's record of applied events) to a window instead of
 * one row per event for ever: deletes the ids older than the retention, oldest first, in batches.
 */
export class ProcessedEventsRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: ProcessedEventsRetentionOptions) {}

  start(): void {
    if (this.timer) return;
    const tick = () => {
      this.running = this.prune().catch((err) =>
        this.opts.logger.warn(
          { err: err instanceof Error ? err.message : String(err) },
          "deleting old processed_events failed; will retry",
        ),
      );
    };
    tick();
    this.timer = setInterval(tick, this.opts.intervalMs ?? 60_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Deletes the ids applied longer ago than the retention; returns how many. */
  async prune(): Promise<number> {
    const n = await deleteOlderThan(
      this.opts.db,
      { table: "processed_events", key: "event_id", column: "processed_at" },
      this.opts.retentionMs ?? 86_400_000,
    );
    if (n > 0) forgotten.inc(n);
    return n;
  }
}

const forgotten = counter(
  "dispatch_processed_events_pruned_total",
  "Applied event ids a consumer deleted from processed_events once past their retention.",
);
