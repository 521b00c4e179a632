import { fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Client } from "@dispatch/client";
import { type AnyDb, QueueVacuum, rowsOf } from "@dispatch/db";
import {
  type Event,
  EventSchema,
  type EventSubscriberService,
} from "@dispatch/gen/dispatch/events/v1/events_pb.ts";
import { counter, gauge, Poller, withContextFrom } from "@dispatch/runtime";
import { sql } from "drizzle-orm";
import type { Logger } from "pino";
import { deleteOlderThan } from "./prune.ts";

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
  /**
   * Events this relay publishes between two VACUUMs of the outbox it runs itself (QueueVacuum); 0: never.
   * Default 2,000.
   */
  vacuumEvery?: number;
  /**
   * How long a published event is kept before the relay deletes it. Default 1 h; Infinity keeps every
   * event. Kept for ever, the table and its indexes grow with every order, and so does each VACUUM's
   * index pass (17 ms at 1,000,000 events, docs/BENCHMARKS-ROUNDS.md).
   */
  publishedRetentionMs?: number;
  /** How often the relay deletes the events past their retention. Default 60 s. */
  pruneIntervalMs?: number;
}

interface Pending {
  row: Claimed;
  event: Event;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface Claimed {
  id: string;
  subject: string;
  payload: Uint8Array;
  attempts: number;
  /** Subscribers that have handled the event in an earlier round: it is not sent to them again. */
  deliveredTo: string[];
}

/**
 * Delivers outbox events to every subscriber over gRPC: at least once, in order per aggregate (subject),
 * retried with exponential backoff. Several replicas may run relays on one database: a claim leases
 * only the oldest pending event of each aggregate, with FOR UPDATE SKIP LOCKED.
 */
export class OutboxRelay {
  private readonly poller: Poller;
  private lagCheckedAt = 0;
  /** Subscribers that answered HandleEvents with UNIMPLEMENTED, until when they are sent one event a call. */
  private readonly oneByOneUntil = new Map<string, number>();
  private readonly vacuum: QueueVacuum;
  private prunedAt = Number.NEGATIVE_INFINITY;
  private pruning: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: OutboxRelayOptions) {
    this.poller = new Poller("outbox-relay", () => this.round(), opts.logger, opts.pollIntervalMs ?? 250);
    this.vacuum = new QueueVacuum(opts.db, "outbox", opts.vacuumEvery ?? 2000, opts.logger);
  }

  start(): void {
    relays.add(this);
    this.poller.start();
  }

  /** Ask for a round soon (after a transaction that wrote events committed). */
  notify(): void {
    this.poller.notify();
  }

  async stop(): Promise<void> {
    relays.delete(this);
    await this.poller.stop();
    await this.pruning;
    await this.vacuum.settled();
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
   * One round: claim, deliver, record. Returns how many events were delivered. Each subscriber gets the
   * round's events in one HandleEvents call (one HandleEvent per event from a subscriber that does not
   * implement it, and for a round of one); an event is published once every subscriber has handled it,
   * and the round's delivered events are marked published in one statement (one commit), not one each.
   * An event some subscribers took and others refused records who took it, and is retried for the rest
   * only: a subscriber sees an event again only when a relay stopped between its answer and that record.
   */
  async runOnce(): Promise<number> {
    const claimed = await this.claim();
    if (claimed.length === 0) return 0;
    // Why each event that is not delivered this round failed (its first failure), by outbox row id.
    const failures = new Map<string, string>();
    const round: Pending[] = [];
    for (const row of claimed) {
      try {
        round.push({ row, event: fromBinary(EventSchema, row.payload) });
      } catch (err) {
        failures.set(row.id, `undecodable event: ${messageOf(err)}`);
      }
    }
    // The subscribers that handled each event this round, by outbox row id.
    const took = new Map<string, string[]>();
    await Promise.all(
      this.opts.subscribers.map((s) =>
        this.deliverTo(
          s,
          round.filter((p) => !p.row.deliveredTo.includes(s.name)),
          failures,
          took,
        ),
      ),
    );
    await Promise.all(
      claimed
        .filter((r) => failures.has(r.id))
        .map((r) => this.retryLater(r, failures.get(r.id)!, took.get(r.id) ?? [])),
    );
    const delivered = round.filter((p) => !failures.has(p.row.id)).map((p) => p.row.id);
    if (delivered.length > 0) {
      await this.opts.db.execute(
        sql`update outbox set published_at = now(), last_error = null where id = any(${sql.param(delivered)}::uuid[])`,
      );
      // Each published event leaves a dead entry in the pending indexes that claims walk until a VACUUM.
      this.vacuum.changed(delivered.length);
    }
    return delivered.length;
  }

  /**
   * Deletes the events published longer ago than the retention (deleteOlderThan: oldest first, in
   * batches, skipping rows another relay is deleting); returns how many.
   */
  async prune(): Promise<number> {
    const retention = this.opts.publishedRetentionMs ?? 3_600_000;
    if (!Number.isFinite(retention)) return 0;
    const total = await deleteOlderThan(
      this.opts.db,
      { table: "outbox", key: "id", column: "published_at" },
      retention,
    );
    if (total > 0) {
      pruned.inc(total);
      // Deleted rows are dead entries in the primary key and the published index until a VACUUM.
      this.vacuum.changed(total);
    }
    return total;
  }

  /**
   * Delivers `round` to one subscriber, recording each event it did not take in `failures` and each it
   * took in `took`.
   */
  private async deliverTo(
    s: Subscriber,
    round: Pending[],
    failures: Map<string, string>,
    took: Map<string, string[]>,
  ): Promise<void> {
    if (round.length === 0) return;
    const timeoutMs = this.opts.deliveryTimeoutMs ?? 5000;
    const failed = (p: Pending, why: string) => {
      deliveries.inc({ subscriber: s.name, result: "failed" });
      if (!failures.has(p.row.id)) failures.set(p.row.id, `${s.name}: ${why}`);
    };
    const ok = (p: Pending) => {
      deliveries.inc({ subscriber: s.name, result: "ok" });
      const names = took.get(p.row.id);
      if (names) names.push(s.name);
      else took.set(p.row.id, [s.name]);
    };
    if (round.length > 1 && (this.oneByOneUntil.get(s.name) ?? 0) <= Date.now()) {
      try {
        // Each event's handling joins its own request's trace on the subscriber's side (a CONSUMER
        // span per event); one call cannot be the child of several traces.
        const { results } = await s.client.handleEvents({ events: round.map((p) => p.event) }, { timeoutMs });
        round.forEach((p, i) => {
          const r = results[i];
          if (!r || r.eventId !== p.event.id) failed(p, `answered ${results.length} results out of order`);
          else if (r.code !== 0) failed(p, `${Code[r.code] ?? r.code}: ${r.message}`);
          else ok(p);
        });
        return;
      } catch (err) {
        if (!(err instanceof ConnectError && err.code === Code.Unimplemented)) {
          for (const p of round) failed(p, messageOf(err));
          return;
        }
        // An older subscriber: one HandleEvent per event, and HandleEvents asked again in a minute.
        this.oneByOneUntil.set(s.name, Date.now() + 60_000);
        this.opts.logger.info(
          { subscriber: s.name },
          "subscriber does not implement HandleEvents; delivering one event per call",
        );
      }
    }
    await Promise.all(
      round.map(async (p) => {
        try {
          // The delivery continues the trace of the request that wrote the event.
          await withContextFrom(
            p.event.traceContext,
            "outbox deliver",
            {
              "messaging.system": "dispatch-outbox",
              "messaging.destination.name": s.name,
              "messaging.message.id": p.event.id,
            },
            () => s.client.handleEvent({ event: p.event }, { timeoutMs }),
          );
          ok(p);
        } catch (err) {
          failed(p, messageOf(err));
        }
      }),
    );
  }

  private async retryLater(row: Claimed, message: string, took: string[]): Promise<void> {
    const backoff = this.backoffMs(row.attempts);
    await this.opts.db.execute(
      sql`update outbox set next_attempt_at = now() + make_interval(secs => ${backoff / 1000}), last_error = ${message}, delivered_to = delivered_to || ${sql.param(took)}::text[] where id = ${row.id}`,
    );
    this.opts.logger.warn(
      { eventId: row.id, subject: row.subject, attempts: row.attempts, retryInMs: backoff, err: message },
      "event delivery failed; will retry",
    );
  }

  private async claim(): Promise<Claimed[]> {
    const lease = (this.opts.leaseMs ?? 30_000) / 1000;
    const rows = rowsOf<{
      id: string;
      subject: string;
      payload: Uint8Array;
      attempts: number;
      delivered_to: string[];
    }>(
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
        returning id, subject, payload, attempts, delivered_to`),
    );
    // Both drivers (postgres.js, PGlite) hand a text[] over as an array of strings.
    return rows.map(({ delivered_to, ...r }) => ({
      ...r,
      payload: new Uint8Array(r.payload),
      deliveredTo: delivered_to,
    }));
  }

  private backoffMs(attempts: number): number {
    const ceiling = this.opts.maxBackoffMs ?? 30_000;
    const base = Math.min(ceiling, 200 * 2 ** Math.max(0, attempts - 1));
    return Math.round(base / 2 + Math.random() * (base / 2));
  }

  private async round(): Promise<number> {
    if (Date.now() - this.prunedAt >= (this.opts.pruneIntervalMs ?? 60_000)) {
      this.prunedAt = Date.now();
      // Beside the deliveries, not in their way; stop() waits for it.
      this.pruning = this.prune().catch((err) =>
        this.opts.logger.warn({ err: messageOf(err) }, "deleting published outbox events failed; will retry"),
      );
    }
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
const pruned = counter(
  "dispatch_outbox_pruned_total",
  "Published outbox events the relay deleted once past their retention.",
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
