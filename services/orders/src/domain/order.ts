/** The order aggregate and its life cycle. Pure TypeScript: no proto, no SQL. */

export interface Money {
  currencyCode: string;
  amountMinor: number;
}

export interface Address {
  line1: string;
  line2: string;
  city: string;
  postalCode: string;
  countryCode: string;
  location?: { latitude: number; longitude: number };
}

export type OrderStatus =
  | "PENDING_PAYMENT"
  | "PLACED"
  | "ACCEPTED"
  | "PREPARING"
  | "READY_FOR_PICKUP"
  | "OUT_FOR_DELIVERY"
  | "DELIVERED"
  | "CANCELLED"
  | "REJECTED";

export interface OrderItem {
  menuItemId: string;
  name: string;
  quantity: number;
  unitPrice: Money;
  lineTotal: Money;
}

export interface StatusChange {
  status: OrderStatus;
  changedAt: Date;
  reason: string;
}

export interface Order {
  id: string;
  userId: string;
  restaurantId: string;
  restaurantName: string;
  status: OrderStatus;
  items: OrderItem[];
  subtotal: Money;
  deliveryFee: Money;
  total: Money;
  deliveryAddress: Address;
  note: string;
  createdAt: Date;
  updatedAt: Date;
  statusHistory: StatusChange[];
}

const transitions: Record<OrderStatus, readonly OrderStatus[]> = {
  PENDING_PAYMENT: ["PLACED", "CANCELLED"],
  PLACED: ["ACCEPTED", "REJECTED", "CANCELLED"],
  ACCEPTED: ["PREPARING", "CANCELLED"],
  PREPARING: ["READY_FOR_PICKUP"],
  READY_FOR_PICKUP: ["OUT_FOR_DELIVERY"],
  OUT_FOR_DELIVERY: ["DELIVERED"],
  DELIVERED: [],
  CANCELLED: [],
  REJECTED: [],
};

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return transitions[from].includes(to);
}

/** Statuses in which an order still needs the user's attention (the app's "active orders"). */
export const ACTIVE_STATUSES: readonly OrderStatus[] = [
  "PENDING_PAYMENT",
  "PLACED",
  "ACCEPTED",
  "PREPARING",
  "READY_FOR_PICKUP",
  "OUT_FOR_DELIVERY",
];
