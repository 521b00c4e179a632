export { type CallContext, CallScope, currentCall, newRequestId, runInCall } from "./call-context.ts";
export {
  bool,
  ConfigError,
  integer,
  loadConfig,
  logLevel,
  oneOf,
  optionalString,
  port,
  requiredString,
  type Setting,
  serverSettings,
} from "./config.ts";
export { isEntryPoint, runMain } from "./entry-point.ts";
export {
  DispatchError,
  type DispatchErrorOptions,
  type FieldViolation,
  FieldViolations,
  invalidArgument,
  toWireStatus,
} from "./errors.ts";
export { frame, MessageReader, MessageTooLargeError, parseTimeout } from "./grpc-protocol.ts";
export type {
  BiDiStreamingImpl,
  ClientStreamingImpl,
  HandlerContext,
  MethodImpl,
  ServerStreamingImpl,
  ServiceImpl,
  ServiceRegistration,
  UnaryImpl,
} from "./handler.ts";
export type { ServingStatus } from "./health.ts";
export { inheritedSockets, type ListenOn, listen, listenOn } from "./inherited-sockets.ts";
export { accessLogger, createLogger, type Logger, type RpcLineFields, RpcLog } from "./logger.ts";
export {
  CODE_NAMES,
  counter,
  gauge,
  histogram,
  RpcMethodMetrics,
  registry as metricsRegistry,
  ServerMethodMetrics,
} from "./metrics.ts";
export { Poller } from "./poller.ts";
export { type ServeOptions, type Server, serve } from "./serve.ts";
export {
  clientSpan,
  consumerSpan,
  dbSpan,
  flushTracing,
  injectContext,
  injectInto,
  type OpenSpan,
  serverSpan,
  startTracing,
  stopTracing,
  type TracingOptions,
  withContextFrom,
} from "./tracing.ts";
