import { handleEventsWith } from "@dispatch/events/handle-events";
import { type Event, EventSubscriberService } from "@dispatch/gen/dispatch/events/v1/events_pb.ts";
import type { ServiceRegistration } from "@dispatch/runtime";

/**
 * Who is watching which order, fed by orders' events (the gateway subscribes to them on its internal
 * port). A change wakes the watchers of that order; they re-read it from orders.
 */
export class OrderWatchHub {
  private readonly watchers = new Map<string, Set<() => void>>();

  /** Resolves at the next change of the order, when `signal` aborts, or after `maxWaitMs`. */
  nextChange(orderId: string, signal: AbortSignal, maxWaitMs: number): Promise<void> {
    return new Promise((resolve) => {
      const set = this.watchers.get(orderId) ?? new Set();
      this.watchers.set(orderId, set);
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        set.delete(done);
        if (set.size === 0) this.watchers.delete(orderId);
        resolve();
      };
      const timer = setTimeout(done, maxWaitMs);
      signal.addEventListener("abort", done, { once: true });
      set.add(done);
    });
  }

  notify(orderId: string): void {
    for (const w of [...(this.watchers.get(orderId) ?? [])]) w();
  }

  get watching(): number {
    return this.watchers.size;
  }
}

/** EventSubscriberService for orders' events: no database, so duplicates only cause a harmless re-read. */
export function orderEventsSubscriber(
  hub: OrderWatchHub,
): ServiceRegistration<typeof EventSubscriberService> {
  // Nothing here can fail for one event alone: every event is answered as handled.
  const wake = async (event: Event) => {
    const p = event.payload;
    if (p.case === "orderStatusChanged" || p.case === "orderPlaced") hub.notify(p.value.orderId);
    return { duplicate: false };
  };
  return [
    EventSubscriberService,
    {
      handleEvent(req) {
        return req.event ? wake(req.event) : { duplicate: false };
      },
      handleEvents: handleEventsWith(wake),
    },
  ];
}
