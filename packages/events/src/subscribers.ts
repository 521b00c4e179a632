import { createClient } from "@dispatch/client";
import { EventSubscriberService } from "@dispatch/gen/dispatch/events/v1/events_pb.ts";
import type { Logger } from "pino";
import type { Subscriber } from "./outbox-relay.ts";

/**
 * Subscribers from configuration: "notifications=127.0.0.1:50055,gateway=127.0.0.1:8080" (each target
 * may itself be a `|`-separated list of replicas). Empty means nobody listens yet.
 */
export function subscribersFrom(spec: string | undefined, logger?: Logger): Subscriber[] {
  if (!spec?.trim()) return [];
  return spec.split(",").map((part) => {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new Error(`event subscriber ${JSON.stringify(part)} is not name=host:port`);
    const name = part.slice(0, eq).trim();
    const target = part
      .slice(eq + 1)
      .trim()
      .replaceAll("|", ",");
    return {
      name,
      client: createClient(EventSubscriberService, { target, name, ...(logger ? { logger } : {}) }),
    };
  });
}
