import type { Logger } from "pino";

/**
 * A background loop for workers that drain a table (outbox relays, push workers, dispatchers): runs
 * `round` again at once while it finds work, waits `idleMs` when it finds none, never overlaps itself,
 * and stops cleanly after the round in progress.
 */
export class Poller {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private wakeSoon = false;

  constructor(
    private readonly name: string,
    /** One round; returns how many items it handled (0 means idle). */
    private readonly round: () => Promise<number>,
    private readonly logger: Logger,
    private readonly idleMs = 250,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** Run a round soon, e.g. after a transaction that queued work committed. */
  notify(): void {
    if (this.stopped) return;
    if (this.running) this.wakeSoon = true;
    else this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => {
        this.running = undefined;
      });
    }, ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    let handled = 0;
    try {
      handled = await this.round();
    } catch (err) {
      this.logger.error({ err, worker: this.name }, "background round failed; will retry");
    }
    if (this.stopped) return;
    const again = handled > 0 || this.wakeSoon;
    this.wakeSoon = false;
    this.schedule(again ? 0 : this.idleMs);
  }
}
