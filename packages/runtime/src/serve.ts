import type http from "node:http";
import type { DescService } from "@bufbuild/protobuf";
import { HealthCheckResponse_ServingStatus } from "@dispatch/gen/grpc/health/v1/health_pb.ts";
import { startAdminServer } from "./admin-server.ts";
import { GrpcServer } from "./grpc-server.ts";
import type { ServiceImpl, ServiceRegistration } from "./handler.ts";
import { HealthRegistry, healthService, type ServingStatus } from "./health.ts";
import { type ListenOn, listen } from "./inherited-sockets.ts";
import { createLogger, type Logger } from "./logger.ts";
import { registry, trackInFlight } from "./metrics.ts";
import { shareProtobufWriterBuffer } from "./protobuf-writer.ts";
import { reflectionServices } from "./reflection.ts";
import { flushTracing, startTracing } from "./tracing.ts";

export interface ServeOptions<T extends readonly DescService[]> {
  /** The service's name in logs, e.g. "orders". */
  name: string;
  /** Each generated service with its implementation. Methods left out answer UNIMPLEMENTED. */
  services: { readonly [I in keyof T]: readonly [T[I], Partial<ServiceImpl<T[I]>>] };
  /**
   * gRPC port; 0 picks a free one. Default 50051. Or a listening socket this process was handed
   * (`listenOn`, inherited-sockets.ts), used as it is.
   */
  port?: ListenOn;
  /** Default 0.0.0.0 (not used for a handed socket). */
  host?: string;
  /** HTTP admin port (/healthz, /readyz), or a handed socket; false for none. Default: port + 1000 (0 when port is 0). */
  adminPort?: ListenOn | false;
  logger?: Logger;
  logLevel?: string;
  /** Largest request message accepted; larger ones get RESOURCE_EXHAUSTED. Default 4 MiB. */
  maxReceiveMessageBytes?: number;
  /** Calls in flight above which new calls are refused with RESOURCE_EXHAUSTED and a retry pushback. Default 1000. */
  maxInFlight?: number;
  /** The pushback (grpc-retry-pushback-ms) sent with refused calls. Default 100 ms. */
  shedPushbackMs?: number;
  /** How long shutdown waits for calls in flight. Default 10 s. */
  shutdownGraceMs?: number;
  /**
   * Checked every `readinessIntervalMs` (default 2 s): while it throws (e.g. the database is down), health
   * reports NOT_SERVING and /readyz 503, so balancers route around this replica; it recovers by itself.
   */
  readiness?: () => Promise<unknown>;
  readinessIntervalMs?: number;
  /** Runs after the last call ended (close the database here). */
  onShutdown?: () => Promise<void> | void;
  /** Shut down gracefully on SIGTERM/SIGINT, then exit. Default false (main.ts turns it on). */
  handleSignals?: boolean;
}

export interface Server {
  readonly port: number;
  readonly adminPort: number | undefined;
  readonly logger: Logger;
  readonly health: { set(service: string, status: ServingStatus): void };
  /** Stops gracefully: NOT_SERVING, GOAWAY, in-flight calls finish (up to the grace period), onShutdown. */
  shutdown(): Promise<void>;
}

/** Runs services as a gRPC server with health, reflection, logging, deadlines and graceful shutdown. */
export async function serve<const T extends readonly DescService[]>(opts: ServeOptions<T>): Promise<Server> {
  const logger = opts.logger ?? createLogger({ name: opts.name, level: opts.logLevel });
  // Every message this process encodes (replies, calls to other services, events) starts on one shared
  // buffer instead of a new one off V8's heap (protobuf-writer.ts).
  if (!shareProtobufWriterBuffer())
    logger.warn("protobuf-es's BinaryWriter is not the one protobuf-writer.ts was written for; left as is");
  const host = opts.host ?? "0.0.0.0";
  const grpc = new GrpcServer({
    logger,
    maxReceiveMessageBytes: opts.maxReceiveMessageBytes ?? 4 * 1024 * 1024,
    maxInFlight: opts.maxInFlight ?? 1000,
    shedPushbackMs: opts.shedPushbackMs ?? 100,
  });
  const health = new HealthRegistry();
  const registrations = opts.services as unknown as readonly ServiceRegistration[];
  const healthReg = healthService(health);
  const served = [...registrations.map(([s]) => s), healthReg[0]];
  for (const r of [...registrations, healthReg, ...reflectionServices(served)])
    grpc.register(r as ServiceRegistration);

  registry.setDefaultLabels({ service: opts.name });
  startTracing({ service: opts.name });
  const untrack = trackInFlight(() => grpc.inFlight);
  await listen(grpc.http2, opts.port ?? 50051, host);
  const port = (grpc.http2.address() as { port: number }).port;

  const adminPortOpt = opts.adminPort ?? (opts.port === 0 ? 0 : port + 1000);
  let admin: http.Server | undefined;
  if (adminPortOpt !== false) {
    admin = await startAdminServer({
      port: adminPortOpt,
      host,
      ready: () => health.get("") === HealthCheckResponse_ServingStatus.SERVING,
    });
  }
  const adminPort = admin ? (admin.address() as { port: number }).port : undefined;

  health.set("", "SERVING");
  for (const [s] of registrations) health.set(s.typeName, "SERVING");

  let readinessTimer: NodeJS.Timeout | undefined;
  if (opts.readiness) {
    let ready = true;
    let checking = false;
    readinessTimer = setInterval(async () => {
      if (checking || stopping) return;
      checking = true;
      try {
        await opts.readiness!();
        if (!ready && !stopping) {
          ready = true;
          health.setAll("SERVING");
          logger.info("dependencies reachable again: SERVING");
        }
      } catch (err) {
        if (ready && !stopping) {
          ready = false;
          health.setAll("NOT_SERVING");
          logger.warn({ err: (err as Error).message }, "readiness check failed: NOT_SERVING");
        }
      } finally {
        checking = false;
      }
    }, opts.readinessIntervalMs ?? 2000);
    readinessTimer.unref();
  }

  let stopping: Promise<void> | undefined;
  const shutdown = () => {
    stopping ??= (async () => {
      if (readinessTimer) clearInterval(readinessTimer);
      const inFlight = grpc.inFlight;
      logger.info({ inFlight }, "shutting down");
      health.setAll("NOT_SERVING");
      // Let Watch streams carry NOT_SERVING out before they end.
      await new Promise((r) => setImmediate(r));
      health.close();
      grpc.startDrain();
      const closed = new Promise<void>((r) => grpc.http2.close(() => r()));
      await grpc.waitForCalls(opts.shutdownGraceMs ?? 10_000);
      await closed;
      try {
        await opts.onShutdown?.();
      } catch (err) {
        logger.error({ err }, "shutdown hook failed");
      }
      if (admin) await new Promise<void>((r) => admin.close(() => r()));
      untrack();
      await flushTracing().catch((err: unknown) => logger.warn({ err }, "could not export the last spans"));
      logger.info("stopped");
      logger.flush();
    })();
    return stopping;
  };

  if (opts.handleSignals) {
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info({ signal }, "signal received");
      shutdown().then(
        () => process.exit(0),
        (err) => {
          logger.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  }

  logger.info({ port, adminPort, services: registrations.map(([s]) => s.typeName) }, "serving");
  return { port, adminPort, logger, health, shutdown };
}
