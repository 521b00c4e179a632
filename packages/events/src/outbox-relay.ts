import { fromBinary } from "@bufbuild/protobuf";
import type { Client } from "@dispatch/client";
import { rowsOf } from "@dispatch/db";
import { EventSchema, type EventSubscriberService } from "@dispatch/gen/dispatch/events/v1/events_pb.ts";
import { counter, gauge, Poller, withContextFrom } from "@dispatch/runtime";
import { sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import type { Logger } from "pino";

// biome-ignore lint/suspicious/noExplicitAny: the relay works on any service's schema
type AnyDb = PgDatabase<PgQueryResultHKT, any>;

export interface Subscriber {
  name: string;
  client: Client<typeof EventSubscriberService>;
}

export interface OutboxRelayOptions {
  db: AnyDb;
  subscribers: Subscriber[];
  logger: Logger;
  /** Idle polling interval. Default 250 ms; notify() wakes the relay sooner. */
  pollIntervalMs?: number;
  /** Events claimed per round (at most one per aggregate). Default 100. */
  batchSize?: number;
  /** How long a claimed event is reserved for this relay before another may take it. Default 30 s. */
  leaseMs?: number;
  /** Retry backoff ceiling. Default 30 s. */
  maxBackoffMs?: number;
  /** Per-delivery deadline. Default 5 s. */
  deliveryTimeoutMs?: number;
}

interface Claimed {
  id: string;
  subject: string;
  payload: Uint8Array;
  attempts: number;
}

/**
 * Delivers outbox events to every subscriber over gRPC: at least once, in order per aggregate (subject),
 * retried with exponential backoff. Several replicas may run relays on one database: a claim leases
 * only the oldest pending event of each aggregate, with FOR UPDATE SKIP LOCKED.
 */
export class OutboxRelay {
  private readonly poller: Poller;
  private lagCheckedAt = 0;

  constructor(private readonly opts: OutboxRelayOptions) {
    this.poller = new Poller("outbox-relay", () => this.round(), opts.logger, opts.pollIntervalMs ?? 250);
  }

  start(): void {
    relays.add(this);
    this.poller.start();
  }

  /** Ask for a round soon (after a transaction that wrote events committed). */
  notify(): void {
    this.poller.notify();
  }

  stop(): Promise<void> {
    relays.delete(this);
    return this.poller.stop();
  }

  /** Undelivered events and the age of the oldest, in one query (read when Prometheus scrapes). */
  async backlog(): Promise<{ events: number; lagSeconds: number }> {
    const [row] = rowsOf<{ n: number | string; lag: number | string | null }>(
      await this.opts.db.execute(
        sql`select count(*) as n, extract(epoch from now() - min(created_at))::float8 as lag from outbox where published_at is null`,
      ),
    );
    return { events: Number(row?.n ?? 0), lagSeconds: Number(row?.lag ?? 0) };
  }

  /** Seconds since the oldest undelivered event was written (0 when none): the relay's lag. */
  async lagSeconds(): Promise<number> {
    return (await this.backlog()).lagSeconds;
  }

  /**
   * One round: claim, deliver, record. Returns how many events were delivered. The delivered events of a
   * round are marked published in one statement (one commit), not one each.
   */
  async runOnce(): Promise<number> {
    const claimed = await this.claim();
    const delivered: string[] = [];
    await Promise.all(
      claimed.map(async (row) => {
        try {
          const event = fromBinary(EventSchema, row.payload);
          for (const s of this.opts.subscribers) {
            try {
              // The delivery continues the trace of the request that wrote the event.
              await withContextFrom(
                event.traceContext,
                "outbox deliver",
                {
                  "messaging.system": "dispatch-outbox",
                  "messaging.destination.name": s.name,
                  "messaging.message.id": event.id,
                },
                () => s.client.handleEvent({ event }, { timeoutMs: this.opts.deliveryTimeoutMs ?? 5000 }),
              );
              deliveries.inc({ subscriber: s.name, result: "ok" });
            } catch (err) {
              deliveries.inc({ subscriber: s.name, result: "failed" });
              throw err;
            }
          }
          delivered.push(row.id);
        } catch (err) {
          const backoff = this.backoffMs(row.attempts);
          const message = err instanceof Error ? err.message : String(err);
          await this.opts.db.execute(
            sql`update outbox set next_attempt_at = now() + make_interval(secs => ${backoff / 1000}), last_error = ${message} where id = ${row.id}`,
          );
          this.opts.logger.warn(
            {
              eventId: row.id,
              subject: row.subject,
              attempts: row.attempts,
              retryInMs: backoff,
              err: message,
            },
            "event delivery failed; will retry",
          );
        }
      }),
    );
    if (delivered.length > 0) {
      await this.opts.db.execute(
        sql`update outbox set published_at = now(), last_error = null where id = any(${sql.param(delivered)}::uuid[])`,
      );
    }
    return delivered.length;
  }

  private async claim(): Promise<Claimed[]> {
    const lease = (this.opts.leaseMs ?? 30_000) / 1000;
    const rows = rowsOf<{ id: string; subject: string; payload: Uint8Array; attempts: number }>(
      await this.opts.db.execute(sql`
        update outbox set next_attempt_at = now() + make_interval(secs => ${lease}), attempts = attempts + 1
        where id in (
          select o.id from outbox o
          where o.published_at is null and o.next_attempt_at <= now()
            and not exists (
              select 1 from outbox p where p.subject = o.subject and p.published_at is null and p.seq < o.seq
            )
          order by o.seq
          limit ${this.opts.batchSize ?? 100}
          for update skip locked
        )
        returning id, subject, payload, attempts`),
    );
    return rows.map((r) => ({ ...r, payload: new Uint8Array(r.payload) }));
  }

  private backoffMs(attempts: number): number {
    const ceiling = this.opts.maxBackoffMs ?? 30_000;
    const base = Math.min(ceiling, 200 * 2 ** Math.max(0, attempts - 1));
    return Math.round(base / 2 + Math.random() * (base / 2));
  }

  private async round(): Promise<number> {
    const delivered = await this.runOnce();
    if (Date.now() - this.lagCheckedAt > 10_000) {
      this.lagCheckedAt = Date.now();
      const lag = await this.lagSeconds();
      if (lag > 10) this.opts.logger.warn({ lagSeconds: Math.round(lag) }, "outbox relay is behind");
    }
    return delivered;
  }
}

const relays = new Set<OutboxRelay>();
const deliveries = counter(
  "dispatch_outbox_deliveries_total",
  "Event deliveries from the outbox relay, by subscriber and result (failed ones are retried).",
  ["subscriber", "result"],
);
/** One query per relay per scrape, shared by the two gauges below (read within the same scrape). */
let lastScrape: { at: number; result: Promise<{ events: number; lagSeconds: number }> } | undefined;
function scrapeBacklog(): Promise<{ events: number; lagSeconds: number }> {
  if (lastScrape && performance.now() - lastScrape.at < 1000) return lastScrape.result;
  const result = (async () => {
    let events = 0;
    let lagSeconds = 0;
    for (const r of relays) {
      const b = await r.backlog().catch(() => ({ events: 0, lagSeconds: 0 }));
      events += b.events;
      lagSeconds = Math.max(lagSeconds, b.lagSeconds);
    }
    return { events, lagSeconds };
  })();
  lastScrape = { at: performance.now(), result };
  return result;
}
gauge(
  "dispatch_outbox_backlog",
  "Outbox events written and not yet delivered to every subscriber.",
  [],
  async function () {
    this.set((await scrapeBacklog()).events);
  },
);
gauge(
  "dispatch_outbox_lag_seconds",
  "Age of the oldest undelivered outbox event (0 when none).",
  [],
  async function () {
    this.set((await scrapeBacklog()).lagSeconds);
  },
);
