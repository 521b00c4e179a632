import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  type OrderSchema as AppOrderSchema,
  OrderStatus as AppOrderStatus,
  type PaymentSchema as AppPaymentSchema,
  PaymentStatus as AppPaymentStatus,
  type RestaurantSchema as AppRestaurantSchema,
  type SessionSchema,
} from "@dispatch/gen/dispatch/app/v1/app_pb.ts";
import type { Restaurant } from "@dispatch/gen/dispatch/catalog/v1/catalog_pb.ts";
import type { TokenPair } from "@dispatch/gen/dispatch/identity/v1/identity_pb.ts";
import { type Order, OrderStatus } from "@dispatch/gen/dispatch/orders/v1/orders_pb.ts";
import { type Payment, PaymentStatus } from "@dispatch/gen/dispatch/payments/v1/payments_pb.ts";

/** Internal messages -> the app's public ones: the app contract evolves on its own schedule. */

export function session(userId: string, t: TokenPair | undefined): MessageInitShape<typeof SessionSchema> {
  return {
    userId,
    accessToken: t?.accessToken ?? "",
    accessTokenExpireTime: t?.accessTokenExpireTime,
    refreshToken: t?.refreshToken ?? "",
    refreshTokenExpireTime: t?.refreshTokenExpireTime,
  };
}

export function restaurant(r: Restaurant): MessageInitShape<typeof AppRestaurantSchema> {
  return {
    id: r.id,
    name: r.name,
    cuisine: r.cuisine,
    description: r.description,
    address: r.address,
    ratingTenths: r.ratingTenths,
    etaMinutes: r.etaMinutes,
    deliveryFee: r.deliveryFee,
    open: r.open,
  };
}

export function order(o: Order): MessageInitShape<typeof AppOrderSchema> {
  return {
    id: o.id,
    restaurantId: o.restaurantId,
    restaurantName: o.restaurantName,
    status:
      AppOrderStatus[OrderStatus[o.status] as keyof typeof AppOrderStatus] ?? AppOrderStatus.UNSPECIFIED,
    items: o.items.map((i) => ({
      menuItemId: i.menuItemId,
      name: i.name,
      quantity: i.quantity,
      unitPrice: i.unitPrice,
      lineTotal: i.lineTotal,
    })),
    subtotal: o.subtotal,
    deliveryFee: o.deliveryFee,
    total: o.total,
    deliveryAddress: o.deliveryAddress,
    createTime: o.createTime,
    updateTime: o.updateTime,
  };
}

export function payment(p: Payment): MessageInitShape<typeof AppPaymentSchema> {
  return {
    id: p.id,
    orderId: p.orderId,
    status:
      AppPaymentStatus[PaymentStatus[p.status] as keyof typeof AppPaymentStatus] ??
      AppPaymentStatus.UNSPECIFIED,
    amount: p.amount,
    clientSecret: p.clientSecret,
    failureReason: p.failureReason,
  };
}

const FINAL = new Set([OrderStatus.DELIVERED, OrderStatus.CANCELLED, OrderStatus.REJECTED]);

export function isFinal(status: OrderStatus): boolean {
  return FINAL.has(status);
}
