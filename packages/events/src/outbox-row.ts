import { create, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { type Event, EventSchema } from "@dispatch/gen/dispatch/events/v1/events_pb.ts";
import { injectContext } from "@dispatch/runtime";
import type { outbox } from "./tables.ts";

/** The outbox row for an event: its envelope serialized, its type and subject kept for queries. */
export function outboxRow(init: MessageInitShape<typeof EventSchema>): typeof outbox.$inferInsert {
  const traceContext: Record<string, string> = {};
  injectContext(traceContext);
  const event: Event = create(EventSchema, { occurTime: timestampNow(), traceContext, ...init });
  if (!event.id || !event.subject || !event.source) throw new Error("an event needs id, source and subject");
  if (!event.payload.case) throw new Error("an event needs a payload");
  return {
    id: event.id,
    eventType: event.payload.case,
    subject: event.subject,
    payload: Buffer.from(toBinary(EventSchema, event)),
  };
}
