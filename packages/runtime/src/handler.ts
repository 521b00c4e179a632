import type {
  DescMessage,
  DescMethodBiDiStreaming,
  DescMethodClientStreaming,
  DescMethodServerStreaming,
  DescMethodUnary,
  DescService,
  MessageInitShape,
  MessageShape,
} from "@bufbuild/protobuf";
import type { Logger } from "pino";
import type { CallContext } from "./call-context.ts";

/** What a handler knows about the call it serves, besides the request. */
export interface HandlerContext extends CallContext {
  /** Full service name, e.g. "dispatch.orders.v1.OrdersService". */
  readonly service: string;
  /** Method name, e.g. "PlaceOrder". */
  readonly method: string;
  /** The caller's address, "ip:port". */
  readonly peer: string;
  /** Milliseconds left until the deadline (negative once passed), or undefined without a deadline. */
  timeRemaining(): number | undefined;
  /** A request metadata value (lowercase key); `-bin` keys come back decoded. */
  requestHeader(key: string): string | Uint8Array | undefined;
  /** Adds response metadata, sent with the first response message (or the status). */
  setResponseHeader(key: string, value: string): void;
  /** Adds trailing metadata, sent with the status. */
  setResponseTrailer(key: string, value: string): void;
  /** A logger bound to this call (service, method, request id). */
  readonly log: Logger;
}

type Init<O extends DescMessage> = MessageInitShape<O>;

export type UnaryImpl<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: HandlerContext,
) => Promise<Init<O>> | Init<O>;
export type ServerStreamingImpl<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: HandlerContext,
) => AsyncIterable<Init<O>>;
export type ClientStreamingImpl<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageShape<I>>,
  ctx: HandlerContext,
) => Promise<Init<O>>;
export type BiDiStreamingImpl<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageShape<I>>,
  ctx: HandlerContext,
) => AsyncIterable<Init<O>>;

export type MethodImpl<M> =
  M extends DescMethodUnary<infer I, infer O>
    ? UnaryImpl<I, O>
    : M extends DescMethodServerStreaming<infer I, infer O>
      ? ServerStreamingImpl<I, O>
      : M extends DescMethodClientStreaming<infer I, infer O>
        ? ClientStreamingImpl<I, O>
        : M extends DescMethodBiDiStreaming<infer I, infer O>
          ? BiDiStreamingImpl<I, O>
          : never;

/** An implementation of a generated service: one function per method, typed from its descriptor. */
export type ServiceImpl<S extends DescService> = { [K in keyof S["method"]]: MethodImpl<S["method"][K]> };

/** A service and its (possibly partial) implementation; methods left out answer UNIMPLEMENTED. */
export type ServiceRegistration<S extends DescService = DescService> = readonly [S, Partial<ServiceImpl<S>>];
