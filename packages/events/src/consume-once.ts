import { Code } from "@connectrpc/connect";
import type { AnyDb } from "@dispatch/db";
import { type Event, EventSubscriberService } from "@dispatch/gen/dispatch/events/v1/events_pb.ts";
import { DispatchError, type ServiceRegistration } from "@dispatch/runtime";
import type { PgQueryResultHKT, PgTransaction } from "drizzle-orm/pg-core";
import { handleEventsWith } from "./handle-events.ts";
import { processedEvents } from "./tables.ts";

// biome-ignore lint/suspicious/noExplicitAny: the transaction of any service's schema
export type AnyTx = PgTransaction<PgQueryResultHKT, any, any>;

/**
 * Applies an event's effect at most once: the event id is recorded in processed_events in the same
 * transaction as the effect, so a redelivery (or a concurrent duplicate) finds it and does nothing.
 */
export async function consumeOnce(
  db: AnyDb,
  eventId: string,
  apply: (tx: AnyTx) => Promise<void>,
): Promise<{ duplicate: boolean }> {
  return db.transaction(async (tx) => {
    const fresh = await tx.insert(processedEvents).values({ eventId }).onConflictDoNothing().returning();
    if (fresh.length === 0) return { duplicate: true };
    await apply(tx as AnyTx);
    return { duplicate: false };
  });
}

export interface EventSubscriberOptions {
  /**
   * Whether the consumer has an effect for this event. Every subscriber is sent every event of the
   * services it subscribes to; one it has nothing to do for is acknowledged without a transaction (there
   * is no effect to apply once). Default: every event is applied.
   */
  handles?: (event: Event) => boolean;
}

/**
 * dispatch.events.v1.EventSubscriberService over consumeOnce: `apply` sees each event it handles once.
 */
export function eventSubscriberService(
  db: AnyDb,
  apply: (event: Event, tx: AnyTx) => Promise<void>,
  options: EventSubscriberOptions = {},
): ServiceRegistration<typeof EventSubscriberService> {
  const handle = async (event: Event): Promise<{ duplicate: boolean }> => {
    if (!event.id) {
      throw new DispatchError(Code.InvalidArgument, "event.id is required", {
        fieldViolations: [{ field: "event.id", description: "is required" }],
      });
    }
    if (options.handles && !options.handles(event)) return { duplicate: false };
    return consumeOnce(db, event.id, (tx) => apply(event, tx));
  };
  return [
    EventSubscriberService,
    {
      handleEvent(req) {
        if (!req.event) {
          throw new DispatchError(Code.InvalidArgument, "event is required", {
            fieldViolations: [{ field: "event", description: "is required" }],
          });
        }
        return handle(req.event);
      },
      handleEvents: handleEventsWith(handle),
    },
  ];
}
