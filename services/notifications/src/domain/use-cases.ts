import { createHash } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { ErrorReason } from "@dispatch/gen/dispatch/notifications/v1/notifications_pb.ts";
import { DispatchError, FieldViolations } from "@dispatch/runtime";
import type { NotificationsRepository } from "./ports.ts";
import type { Notification } from "./push.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const domain = "notifications.dispatch";

export interface SendInput {
  notificationId: string;
  userId: string;
  title: string;
  body: string;
  data: Record<string, string>;
}

export class Notifications {
  constructor(private readonly repo: NotificationsRepository) {}

  /** Queues a push for every device of the user; sending happens in the workers, never here. */
  async send(input: SendInput): Promise<Notification> {
    const v = new FieldViolations();
    if (!UUID.test(input.notificationId)) v.add("notification_id", "must be a UUID");
    if (!input.userId) v.add("user_id", "is required");
    if (!input.title || input.title.length > 200) v.add("title", "must be 1-200 characters");
    if (input.body.length > 2000) v.add("body", "must be at most 2000 characters");
    if (Object.keys(input.data).length > 20) v.add("data", "must have at most 20 entries");
    v.throwIfAny();
    const requestHash = createHash("sha256")
      .update(JSON.stringify([input.userId, input.title, input.body, Object.entries(input.data).sort()]))
      .digest("hex");
    const r = await this.repo.enqueue({
      id: input.notificationId,
      userId: input.userId,
      title: input.title,
      body: input.body,
      data: input.data,
      requestHash,
    });
    if (r.requestHash !== requestHash) {
      throw new DispatchError(
        Code.FailedPrecondition,
        `notification ${input.notificationId} was queued with other content`,
        {
          reason: ErrorReason[ErrorReason.NOTIFICATION_ID_REUSED],
          domain,
        },
      );
    }
    return r.notification;
  }

  async get(id: string): Promise<Notification> {
    const v = new FieldViolations();
    if (!UUID.test(id)) v.add("notification_id", "must be a UUID");
    v.throwIfAny();
    const n = await this.repo.get(id);
    if (!n) {
      throw new DispatchError(Code.NotFound, `notification ${id} not found`, {
        reason: ErrorReason[ErrorReason.NOTIFICATION_NOT_FOUND],
        domain,
      });
    }
    return n;
  }

  async list(
    userId: string,
    pageSize: number,
    pageToken: string,
  ): Promise<{ notifications: Notification[]; nextPageToken: string }> {
    const v = new FieldViolations();
    if (!userId) v.add("user_id", "is required");
    if (pageSize < 0 || pageSize > 100) v.add("page_size", "must be between 0 and 100");
    v.throwIfAny();
    let before: { createdAt: Date; id: string } | undefined;
    if (pageToken) {
      try {
        const [t, id] = JSON.parse(Buffer.from(pageToken, "base64url").toString()) as [string, string];
        before = { createdAt: new Date(t), id };
        if (Number.isNaN(before.createdAt.getTime()) || !UUID.test(id)) throw new Error("bad token");
      } catch {
        throw new DispatchError(Code.InvalidArgument, "page_token is not a token this query returned", {
          reason: ErrorReason[ErrorReason.INVALID_PAGE_TOKEN],
          domain,
          fieldViolations: [{ field: "page_token", description: "unrecognised" }],
        });
      }
    }
    const limit = pageSize || 20;
    const rows = await this.repo.list(userId, limit + 1, before);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      notifications: page,
      nextPageToken:
        rows.length > limit && last
          ? Buffer.from(JSON.stringify([last.createdAt.toISOString(), last.id])).toString("base64url")
          : "",
    };
  }
}
