import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type {
  Event,
  EventResultSchema,
  HandleEventsRequest,
  HandleEventsResponseSchema,
} from "@dispatch/gen/dispatch/events/v1/events_pb.ts";
import {
  consumerSpan,
  currentCall,
  type HandlerContext,
  invalidArgument,
  runInCall,
  toWireStatus,
} from "@dispatch/runtime";

/** The most events one HandleEvents call may carry (dispatch.events.v1.HandleEventsRequest.events). */
export const MAX_EVENTS_PER_CALL = 500;

type EventResult = MessageInitShape<typeof EventResultSchema>;

/**
 * HandleEvents from the function that handles one event (what HandleEvent does): events of one subject in
 * the request's order, other subjects concurrently; each event's failure is its own result (its status
 * code and, for an error meant for the caller, its message), not the call's; each event handled in a
 * CONSUMER span that continues the trace of the request that wrote it.
 */
export function handleEventsWith(
  handleOne: (event: Event) => Promise<{ duplicate: boolean }>,
): (
  req: HandleEventsRequest,
  ctx: HandlerContext,
) => Promise<MessageInitShape<typeof HandleEventsResponseSchema>> {
  return async (req, ctx) => {
    if (req.events.length > MAX_EVENTS_PER_CALL) {
      throw invalidArgument(
        [{ field: "events", description: `at most ${MAX_EVENTS_PER_CALL}` }],
        `events: at most ${MAX_EVENTS_PER_CALL} per call, got ${req.events.length}`,
      );
    }
    const results: EventResult[] = new Array(req.events.length);
    const bySubject = new Map<string, Promise<void>>();
    const call = currentCall();
    const one = async (event: Event, i: number) => {
      const span = consumerSpan(event.traceContext, "event handle", {
        "messaging.system": "dispatch-outbox",
        "messaging.operation.type": "process",
        "messaging.message.id": event.id,
        "messaging.batch.message_count": req.events.length,
      });
      try {
        const handled = call
          ? await runInCall(
              // Not a spread: the call's signal is a getter, which a spread would leave behind.
              { signal: call.signal, deadline: call.deadline, requestId: call.requestId, traceSpan: span },
              () => handleOne(event),
            )
          : await handleOne(event);
        results[i] = { eventId: event.id, code: 0, duplicate: handled.duplicate };
        span.end(0);
      } catch (err) {
        const status = toWireStatus(err);
        if (status.unexpected) ctx.log.error({ err, eventId: event.id }, "event not handled");
        else
          ctx.log.warn(
            { eventId: event.id, code: Code[status.code], err: status.message },
            "event not handled",
          );
        results[i] = { eventId: event.id, code: status.code, message: status.message };
        span.end(status.code, status.message);
      }
    };
    await Promise.all(
      req.events.map((event, i) => {
        const next = (bySubject.get(event.subject) ?? Promise.resolve()).then(() => one(event, i));
        bySubject.set(event.subject, next);
        return next;
      }),
    );
    return { results };
  };
}
