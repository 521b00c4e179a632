import { type Database, type QueueVacuum, rowsOf } from "@dispatch/db";
import { and, asc, desc, eq, inArray, lt, or, sql } from "drizzle-orm";
import type { AttemptRecord, ClaimedJob, NewNotification, NotificationsRepository } from "../domain/ports.ts";
import type { Delivery, Notification, NotificationStatus } from "../domain/push.ts";
import { deliveries, notifications, type schema } from "./schema.ts";

type Db = Database<typeof schema>["db"];

const outcomeName = {
  delivered: "DELIVERED",
  invalid_token: "TOKEN_INVALID",
  transient: "FAILED",
  failed: "FAILED",
} as const;

export class PgNotificationsRepository implements NotificationsRepository {
  /**
   * `vacuum`: the queue's VACUUMs, counted on its claims and attempt records (each leaves a dead entry in
   * the queue's partial index); the worker's repository has one, a transaction's has none.
   */
  constructor(
    private readonly db: Db | Parameters<Parameters<Db["transaction"]>[0]>[0],
    private readonly vacuum?: QueueVacuum,
  ) {}

  async enqueue(n: NewNotification) {
    await this.db
      .insert(notifications)
      .values({
        id: n.id,
        userId: n.userId,
        title: n.title,
        body: n.body,
        data: n.data,
        requestHash: n.requestHash,
        status: "QUEUED",
      })
      .onConflictDoNothing();
    const [row] = await this.db.select().from(notifications).where(eq(notifications.id, n.id));
    return { notification: toNotification(row!, []), requestHash: row!.requestHash };
  }

  async get(id: string): Promise<Notification | undefined> {
    const [row] = await this.db.select().from(notifications).where(eq(notifications.id, id));
    if (!row) return undefined;
    const log = await this.db
      .select()
      .from(deliveries)
      .where(eq(deliveries.notificationId, id))
      .orderBy(asc(deliveries.id));
    return toNotification(row, log);
  }

  async list(
    userId: string,
    limit: number,
    before: { createdAt: Date; id: string } | undefined,
  ): Promise<Notification[]> {
    const rows = await this.db
      .select()
      .from(notifications)
      .where(
        and(
          eq(notifications.userId, userId),
          before
            ? or(
                lt(notifications.createdAt, before.createdAt),
                and(eq(notifications.createdAt, before.createdAt), lt(notifications.id, before.id)),
              )
            : undefined,
        ),
      )
      .orderBy(desc(notifications.createdAt), desc(notifications.id))
      .limit(limit);
    if (rows.length === 0) return [];
    const log = await this.db
      .select()
      .from(deliveries)
      .where(
        inArray(
          deliveries.notificationId,
          rows.map((r) => r.id),
        ),
      )
      .orderBy(asc(deliveries.id));
    return rows.map((r) =>
      toNotification(
        r,
        log.filter((l) => l.notificationId === r.id),
      ),
    );
  }

  async queueDepth(): Promise<number> {
    const [row] = rowsOf<{ n: number | string }>(
      await this.db.execute(sql`select count(*) as n from notifications where status = 'QUEUED'`),
    );
    return Number(row?.n ?? 0);
  }

  async claim(limit: number, leaseMs: number): Promise<ClaimedJob[]> {
    const rows = rowsOf<{
      id: string;
      user_id: string;
      title: string;
      body: string;
      data: Record<string, string> | string;
      attempts: number;
    }>(
      await this.db.execute(sql`
        update notifications set next_attempt_at = now() + make_interval(secs => ${leaseMs / 1000}), attempts = attempts + 1
        where id in (
          select id from notifications
          where status = 'QUEUED' and next_attempt_at <= now()
          order by next_attempt_at
          limit ${limit}
          for update skip locked)
        returning id, user_id, title, body, data, attempts`),
    );
    if (rows.length === 0) return [];
    this.vacuum?.changed(rows.length);
    const done = await this.db
      .select({ notificationId: deliveries.notificationId, deviceId: deliveries.deviceId })
      .from(deliveries)
      .where(
        and(
          inArray(
            deliveries.notificationId,
            rows.map((r) => r.id),
          ),
          eq(deliveries.outcome, "DELIVERED"),
        ),
      );
    return rows.map((r) => ({
      id: r.id,
      userId: r.user_id,
      title: r.title,
      body: r.body,
      data: typeof r.data === "string" ? (JSON.parse(r.data) as Record<string, string>) : r.data,
      attempts: r.attempts,
      delivered: new Set(done.filter((d) => d.notificationId === r.id).map((d) => d.deviceId)),
    }));
  }

  async record(
    jobId: string,
    attempts: AttemptRecord[],
    next: { status: NotificationStatus; retryInMs?: number; error?: string },
  ) {
    await this.db.transaction(async (tx) => {
      if (attempts.length > 0) {
        await tx.insert(deliveries).values(
          attempts.map((a) => ({
            notificationId: jobId,
            deviceId: a.device.deviceId,
            platform: a.device.platform,
            outcome: outcomeName[a.outcome.kind],
            error: a.outcome.kind === "delivered" ? "" : a.outcome.error,
          })),
        );
      }
      await tx
        .update(notifications)
        .set({
          status: next.status,
          lastError: next.error ?? null,
          nextAttemptAt: sql`now() + make_interval(secs => ${(next.retryInMs ?? 0) / 1000})`,
          ...(next.status === "SENT" || next.status === "PARTIALLY_SENT" ? { sentAt: sql`now()` } : {}),
        })
        .where(eq(notifications.id, jobId));
    });
    this.vacuum?.changed(1);
  }
}

function toNotification(
  r: typeof notifications.$inferSelect,
  log: (typeof deliveries.$inferSelect)[],
): Notification {
  return {
    id: r.id,
    userId: r.userId,
    title: r.title,
    body: r.body,
    data: r.data,
    status: r.status as NotificationStatus,
    attempts: r.attempts,
    deliveries: log.map(
      (l): Delivery => ({
        deviceId: l.deviceId,
        platform: l.platform,
        outcome: l.outcome as Delivery["outcome"],
        error: l.error,
        attemptedAt: l.attemptedAt,
      }),
    ),
    createdAt: r.createdAt,
    sentAt: r.sentAt ?? undefined,
  };
}
