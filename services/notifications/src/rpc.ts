import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  DeliveryOutcome,
  NotificationsService,
  NotificationStatus as ProtoStatus,
} from "@dispatch/gen/dispatch/notifications/v1/notifications_pb.ts";
import type { ServiceImpl } from "@dispatch/runtime";
import type { Notification } from "./domain/push.ts";
import type { Notifications } from "./domain/use-cases.ts";

/** The proto adapter: request -> use case -> response. */
export function notificationsRpc(
  n: Notifications,
): [typeof NotificationsService, ServiceImpl<typeof NotificationsService>] {
  return [
    NotificationsService,
    {
      async sendNotification(req) {
        const sent = await n.send({
          notificationId: req.notificationId,
          userId: req.userId,
          title: req.title,
          body: req.body,
          data: req.data,
        });
        return { notification: notificationMsg(sent) };
      },
      async getNotification(req) {
        return { notification: notificationMsg(await n.get(req.notificationId)) };
      },
      async listNotifications(req) {
        const page = await n.list(req.userId, req.pageSize, req.pageToken);
        return { notifications: page.notifications.map(notificationMsg), nextPageToken: page.nextPageToken };
      },
    },
  ];
}

function notificationMsg(n: Notification) {
  return {
    id: n.id,
    userId: n.userId,
    title: n.title,
    body: n.body,
    data: n.data,
    status: ProtoStatus[n.status],
    attempts: n.attempts,
    deliveries: n.deliveries.map((d) => ({
      deviceId: d.deviceId,
      platform: d.platform,
      outcome: DeliveryOutcome[d.outcome],
      error: d.error,
      attemptTime: timestampFromDate(d.attemptedAt),
    })),
    createTime: timestampFromDate(n.createdAt),
    ...(n.sentAt ? { sendTime: timestampFromDate(n.sentAt) } : {}),
  };
}
