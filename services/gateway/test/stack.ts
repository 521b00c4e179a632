import {
  createTestDatabase,
  freePort,
  type ServiceProcess,
  startServiceProcess,
  type TestDatabase,
} from "@dispatch/testing";
import { startGateway } from "../src/main.ts";

export const WEBHOOK_SECRET = "e2e-webhook-secret";

/** The whole backend on loopback: five services as processes, each on its own database, and the gateway in-process. */
export async function startStack(gatewayEnv: Record<string, string> = {}) {
  const [gwPort, gwInternal, ordersPort, paymentsPort, notificationsPort] = await Promise.all(
    [1, 2, 3, 4, 5].map(() => freePort()),
  );
  const dbs: TestDatabase[] = await Promise.all([1, 2, 3, 4, 5].map(() => createTestDatabase()));
  // A service that fails to start must not leave the others running (nor its databases behind): each
  // group waits for all of its starts to settle, and a failure stops what did start before it rethrows.
  const started: ServiceProcess[] = [];
  const start = (service: string, env: Record<string, string | undefined>) =>
    startServiceProcess(service, env).then((p) => {
      started.push(p);
      return p;
    });
  const all = async <T extends unknown[]>(...starts: { [K in keyof T]: Promise<T[K]> }): Promise<T> => {
    const results = await Promise.allSettled(starts);
    const failed = results.find((r) => r.status === "rejected");
    if (!failed) return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as T;
    await Promise.allSettled(started.map((p) => p.stop()));
    await Promise.allSettled(dbs.map((d) => d.drop()));
    throw failed.reason;
  };
  const [identity, catalog] = await all(
    start("identity", { DATABASE_URL: dbs[0]!.url }),
    // info: its RPC lines show the request ids the gateway passes on.
    start("catalog", { DATABASE_URL: dbs[1]!.url, LOG_LEVEL: "info" }),
  );
  const [orders, payments, notifications] = await all(
    start("orders", {
      PORT: String(ordersPort),
      DATABASE_URL: dbs[2]!.url,
      CATALOG_URL: `127.0.0.1:${catalog.port}`,
      EVENT_SUBSCRIBERS: `gateway=127.0.0.1:${gwInternal},notifications=127.0.0.1:${notificationsPort}`,
    }),
    start("payments", {
      PORT: String(paymentsPort),
      DATABASE_URL: dbs[3]!.url,
      EVENT_SUBSCRIBERS: `orders=127.0.0.1:${ordersPort},notifications=127.0.0.1:${notificationsPort}`,
      WEBHOOK_URL: `http://127.0.0.1:${gwPort}/webhooks/payments`,
      WEBHOOK_SECRET,
      FAKE_PROVIDER_DELAY_MS: "20",
    }),
    start("notifications", {
      PORT: String(notificationsPort),
      DATABASE_URL: dbs[4]!.url,
      IDENTITY_URL: `127.0.0.1:${identity.port}`,
    }),
  );
  const downstream = {
    IDENTITY_URL: `127.0.0.1:${identity.port}`,
    CATALOG_URL: `127.0.0.1:${catalog.port}`,
    ORDERS_URL: `127.0.0.1:${orders.port}`,
    PAYMENTS_URL: `127.0.0.1:${payments.port}`,
    NOTIFICATIONS_URL: `127.0.0.1:${notifications.port}`,
  };
  const [gateway] = await all(
    startGateway({
      PORT: String(gwPort),
      INTERNAL_PORT: String(gwInternal),
      ADMIN_PORT: "0",
      LOG_LEVEL: "warn",
      WEBHOOK_SECRET,
      ...downstream,
      ...gatewayEnv,
    }),
  );
  const processes: ServiceProcess[] = [identity, catalog, orders, payments, notifications];
  return {
    gateway,
    catalog,
    processes,
    downstream,
    url: `http://127.0.0.1:${gateway.port}`,
    async stop() {
      await gateway.shutdown();
      await Promise.all(processes.map((p) => p.stop()));
      await Promise.all(dbs.map((d) => d.drop()));
    },
  };
}
