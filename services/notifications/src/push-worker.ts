import { counter, gauge, type Logger, Poller } from "@dispatch/runtime";
import type { AttemptRecord, ClaimedJob, DeviceDirectory, NotificationsRepository } from "./domain/ports.ts";
import type { PushProvider } from "./domain/push.ts";

export interface PushWorkerOptions {
  repo: NotificationsRepository;
  devices: DeviceDirectory;
  providers: { ios: PushProvider; android: PushProvider };
  logger: Logger;
  /** Jobs sent at once by this process (the bounded pool). Default 4. */
  concurrency?: number;
  maxAttempts?: number;
  pollIntervalMs?: number;
  leaseMs?: number;
}

/**
 * Sends queued pushes, outside any request. Claims up to `concurrency` jobs at a time (leased, so other
 * workers and replicas skip them), sends to each device through its platform's provider, unregisters
 * tokens the provider calls dead, and retries transient failures with exponential backoff; devices a
 * notification already reached are not sent it again.
 */
export class PushWorker {
  private readonly poller: Poller;

  constructor(private readonly opts: PushWorkerOptions) {
    this.poller = new Poller("push-worker", () => this.runOnce(), opts.logger, opts.pollIntervalMs ?? 200);
  }

  start(): void {
    queues.add(this.opts.repo);
    this.poller.start();
  }

  stop(): Promise<void> {
    queues.delete(this.opts.repo);
    return this.poller.stop();
  }

  /** One round; returns how many jobs it handled. */
  async runOnce(): Promise<number> {
    const jobs = await this.opts.repo.claim(this.opts.concurrency ?? 4, this.opts.leaseMs ?? 60_000);
    await Promise.all(jobs.map((job) => this.process(job)));
    return jobs.length;
  }

  private async process(job: ClaimedJob): Promise<void> {
    const { repo, logger } = this.opts;
    try {
      const all = await this.opts.devices.list(job.userId);
      const targets = all.filter((d) => !job.delivered.has(d.deviceId));
      if (all.length === 0) return await repo.record(job.id, [], { status: "NO_DEVICES" });
      const message = { title: job.title, body: job.body, data: job.data };
      const attempts: AttemptRecord[] = [];
      for (const platform of ["ios", "android"] as const) {
        const group = targets.filter((d) => d.platform === platform);
        if (group.length === 0) continue;
        const outcomes = await this.opts.providers[platform].send(group, message);
        for (const [i, device] of group.entries()) {
          const outcome = outcomes[i] ?? { kind: "failed" as const, error: "no outcome" };
          attempts.push({ device, outcome });
          pushSends.inc({ platform, result: outcome.kind });
        }
      }
      for (const a of attempts.filter((x) => x.outcome.kind === "invalid_token")) {
        await this.opts.devices.unregister(job.userId, a.device.deviceId).catch((err: unknown) => {
          logger.warn(
            { err: (err as Error).message, deviceId: a.device.deviceId },
            "could not unregister a dead push token",
          );
        });
      }
      const transient = attempts.filter((a) => a.outcome.kind === "transient");
      if (transient.length > 0 && job.attempts < (this.opts.maxAttempts ?? 5)) {
        const retryInMs = Math.min(60_000, 500 * 2 ** (job.attempts - 1));
        const error = transient.map((t) => (t.outcome as { error: string }).error).join("; ");
        return await repo.record(job.id, attempts, { status: "QUEUED", retryInMs, error });
      }
      const deliveredNow = attempts.filter((a) => a.outcome.kind === "delivered").length + job.delivered.size;
      const status = deliveredNow === 0 ? "FAILED" : deliveredNow >= all.length ? "SENT" : "PARTIALLY_SENT";
      await repo.record(job.id, attempts, { status });
    } catch (err) {
      // Identity unreachable, or the database: the lease expires and the job is tried again.
      logger.warn({ err: (err as Error).message, notificationId: job.id }, "push job failed; will retry");
    }
  }
}

const pushSends = counter(
  "dispatch_push_sends_total",
  "Pushes handed to a provider, by platform (ios: APNs, android: FCM) and result.",
  ["platform", "result"],
);

const queues = new Set<NotificationsRepository>();
gauge("dispatch_push_queue_depth", "Push notifications queued and not yet sent.", [], async function () {
  let n = 0;
  for (const q of queues) n += await q.queueDepth().catch(() => 0);
  this.set(n);
});
