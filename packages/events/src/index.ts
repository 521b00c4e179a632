export { type AnyTx, consumeOnce, eventSubscriberService } from "./consume-once.ts";
export { handleEventsWith, MAX_EVENTS_PER_CALL } from "./handle-events.ts";
export { OutboxRelay, type OutboxRelayOptions, type Subscriber } from "./outbox-relay.ts";
export { outboxRow } from "./outbox-row.ts";
export {
  ProcessedEventsRetention,
  type ProcessedEventsRetentionOptions,
} from "./processed-events-retention.ts";
export { subscribersFrom } from "./subscribers.ts";
export { outbox, processedEvents } from "./tables.ts";
