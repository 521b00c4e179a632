import {
  Code,
  ConnectError,
  createContextKey,
  type HandlerContext,
  type ServiceImpl,
} from "@connectrpc/connect";
import { type Client, callUndecoded } from "@dispatch/client";
import {
  ListActiveOrdersResponseSchema as AppListActiveOrdersResponseSchema,
  Platform as AppPlatform,
  type AppService,
  HomeSection,
} from "@dispatch/gen/dispatch/app/v1/app_pb.ts";
import type { CatalogService } from "@dispatch/gen/dispatch/catalog/v1/catalog_pb.ts";
import { type IdentityService, Platform } from "@dispatch/gen/dispatch/identity/v1/identity_pb.ts";
import {
  ListActiveOrdersResponseSchema,
  type Order,
  OrderStatus,
  OrdersService,
} from "@dispatch/gen/dispatch/orders/v1/orders_pb.ts";
import type { PaymentsService } from "@dispatch/gen/dispatch/payments/v1/payments_pb.ts";
import type { AuthenticatedUser } from "./access-tokens.ts";
import * as map from "./mapping.ts";
import type { OrderWatchHub } from "./order-watch.ts";
import { kWireReplies, type WireMapping, WireReply, wireMapping } from "./wire-mapping.ts";

/** The user the auth interceptor verified; absent on public methods. */
export const kUser = createContextKey<AuthenticatedUser | undefined>(undefined);

/** Methods callable without an access token. */
export const PUBLIC_METHODS = new Set([
  "SignUp",
  "SignIn",
  "Refresh",
  "SignOut",
  "ListRestaurants",
  "GetMenu",
]);

export interface Downstream {
  identity: Client<typeof IdentityService>;
  catalog: Client<typeof CatalogService>;
  orders: Client<typeof OrdersService>;
  payments: Client<typeof PaymentsService>;
}

/** Every downstream call gets the caller's cancellation and never more time than the caller has left. */
function call(ctx: HandlerContext, capMs = 5000) {
  const left = ctx.timeoutMs();
  return { signal: ctx.signal, timeoutMs: Math.max(1, Math.min(capMs, left ?? capMs)) };
}

function user(ctx: HandlerContext): AuthenticatedUser {
  const u = ctx.values.get(kUser);
  if (!u) throw new ConnectError("authentication required", Code.Unauthenticated);
  return u;
}

/** The order, if it is the caller's; someone else's order is as good as missing. */
async function ownOrder(d: Downstream, ctx: HandlerContext, orderId: string): Promise<Order> {
  const { order } = await d.orders.getOrder({ orderId }, call(ctx));
  if (!order || order.userId !== user(ctx).userId)
    throw new ConnectError(`order ${orderId} not found`, Code.NotFound);
  return order;
}

/**
 * Orders' list of active orders reaches the app as it is, field for field (mapping.ts's `order`): on the
 * lean path it is mapped on the wire instead of decoded, mapped and encoded again (wire-mapping.ts; a
 * JSON reply is then written from those bytes, wire-json.ts). Undefined if the two
 * contracts ever part ways; the decoded path then serves.
 */
const activeOrdersOnTheWire = wireMapping(ListActiveOrdersResponseSchema, AppListActiveOrdersResponseSchema);

/** A reply mapped on the wire; bytes that orders should never send are its fault: INTERNAL, as a reply the client cannot decode. */
function wireReply(mapping: WireMapping, bytes: Uint8Array, what: string): WireReply {
  try {
    return new WireReply(mapping(bytes));
  } catch (err) {
    throw new ConnectError(`orders sent an invalid ${what}: ${(err as Error).message}`, Code.Internal);
  }
}

export function appService(
  d: Downstream,
  hub: OrderWatchHub,
  opts: { homeDeadlineMs: number },
): ServiceImpl<typeof AppService> {
  return {
    async signUp(req, ctx) {
      const r = await d.identity.signUp(
        { email: req.email, password: req.password, displayName: req.displayName },
        call(ctx),
      );
      return { session: map.session(r.user?.id ?? "", r.tokens) };
    },
    async signIn(req, ctx) {
      const r = await d.identity.signIn({ email: req.email, password: req.password }, call(ctx));
      return { session: map.session(r.user?.id ?? "", r.tokens) };
    },
    async refresh(req, ctx) {
      const r = await d.identity.refreshToken({ refreshToken: req.refreshToken }, call(ctx));
      return { session: map.session("", r.tokens) };
    },
    async signOut(req, ctx) {
      await d.identity.signOut({ refreshToken: req.refreshToken }, call(ctx));
      return {};
    },

    async getHome(req, ctx) {
      const { userId } = user(ctx);
      const within = call(ctx, opts.homeDeadlineMs);
      // One deadline for all three; a part that fails or whose breaker is open is reported missing.
      const [restaurants, active, profile] = await Promise.allSettled([
        d.catalog.listRestaurants({ pageSize: 10, ...(req.location ? { near: req.location } : {}) }, within),
        d.orders.listActiveOrders({ userId }, within),
        d.identity.getUser({ userId }, within),
      ]);
      const missing: HomeSection[] = [];
      if (restaurants.status === "rejected") missing.push(HomeSection.RESTAURANTS);
      if (active.status === "rejected") missing.push(HomeSection.ACTIVE_ORDERS);
      if (profile.status === "rejected") missing.push(HomeSection.PROFILE);
      if (missing.length === 3)
        throw new ConnectError("home screen is unavailable right now", Code.Unavailable);
      return {
        restaurants:
          restaurants.status === "fulfilled" ? restaurants.value.restaurants.map(map.restaurant) : [],
        activeOrders: active.status === "fulfilled" ? active.value.orders.map(map.order) : [],
        ...(profile.status === "fulfilled" && profile.value.user
          ? {
              profile: {
                userId,
                email: profile.value.user.email,
                displayName: profile.value.user.displayName,
              },
            }
          : {}),
        missing,
      };
    },
    async listRestaurants(req, ctx) {
      const r = await d.catalog.listRestaurants(
        {
          pageSize: req.pageSize,
          pageToken: req.pageToken,
          cuisine: req.cuisine,
          ...(req.near ? { near: req.near } : {}),
        },
        call(ctx),
      );
      return { restaurants: r.restaurants.map(map.restaurant), nextPageToken: r.nextPageToken };
    },
    async getMenu(req, ctx) {
      const [r, m] = await Promise.all([
        d.catalog.getRestaurant({ restaurantId: req.restaurantId }, call(ctx)),
        d.catalog.getMenu({ restaurantId: req.restaurantId }, call(ctx)),
      ]);
      return {
        ...(r.restaurant ? { restaurant: map.restaurant(r.restaurant) } : {}),
        items: m.items.map((i) => ({
          id: i.id,
          name: i.name,
          description: i.description,
          category: i.category,
          price: i.price,
          available: i.available,
        })),
      };
    },

    async placeOrder(req, ctx) {
      const { order } = await d.orders.placeOrder(
        {
          requestId: req.requestId,
          userId: user(ctx).userId,
          restaurantId: req.restaurantId,
          items: req.items.map((i) => ({ menuItemId: i.menuItemId, quantity: i.quantity })),
          ...(req.deliveryAddress ? { deliveryAddress: req.deliveryAddress } : {}),
          note: req.note,
        },
        call(ctx),
      );
      return { order: map.order(order!) };
    },
    async getOrder(req, ctx) {
      return { order: map.order(await ownOrder(d, ctx, req.orderId)) };
    },
    async listActiveOrders(_req, ctx) {
      const input = { userId: user(ctx).userId };
      if (activeOrdersOnTheWire && ctx.values.get(kWireReplies)) {
        const bytes = await callUndecoded(d.orders, OrdersService.method.listActiveOrders, input, call(ctx));
        // The lean path sends a WireReply as it is; ServiceImpl's type knows only messages.
        return wireReply(activeOrdersOnTheWire, bytes, "ListActiveOrdersResponse") as never;
      }
      const r = await d.orders.listActiveOrders(input, call(ctx));
      return { orders: r.orders.map(map.order) };
    },
    async *watchOrder(req, ctx) {
      let last = await ownOrder(d, ctx, req.orderId);
      yield { order: map.order(last) };
      while (!map.isFinal(last.status) && !ctx.signal.aborted) {
        // Events wake us; a slow re-check covers a gateway that missed one (e.g. it restarted).
        await hub.nextChange(req.orderId, ctx.signal, 15_000);
        if (ctx.signal.aborted) return;
        const { order } = await d.orders.getOrder(
          { orderId: req.orderId },
          { signal: ctx.signal, timeoutMs: 5000 },
        );
        if (order && order.status !== last.status) {
          last = order;
          yield { order: map.order(order) };
        }
      }
    },

    async registerDevice(req, ctx) {
      const platform =
        req.platform === AppPlatform.IOS
          ? Platform.IOS
          : req.platform === AppPlatform.ANDROID
            ? Platform.ANDROID
            : Platform.UNSPECIFIED;
      await d.identity.registerDevice(
        { userId: user(ctx).userId, deviceId: req.deviceId, platform, pushToken: req.pushToken },
        call(ctx),
      );
      return {};
    },
    async createPayment(req, ctx) {
      const order = await ownOrder(d, ctx, req.orderId);
      if (order.status !== OrderStatus.PENDING_PAYMENT) {
        throw new ConnectError(`order ${order.id} is not awaiting payment`, Code.FailedPrecondition);
      }
      const { payment } = await d.payments.createPayment(
        { idempotencyKey: req.idempotencyKey, orderId: order.id, userId: order.userId, amount: order.total },
        call(ctx),
      );
      return { payment: map.payment(payment!) };
    },
  };
}
