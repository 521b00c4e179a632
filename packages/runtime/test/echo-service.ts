import { Code } from "@connectrpc/connect";
import { EchoService } from "@dispatch/gen/dispatch/echo/v1/echo_pb.ts";
import {
  DispatchError,
  FieldViolations,
  type HandlerContext,
  type ServiceRegistration,
} from "../src/index.ts";

export interface Observed {
  aborts: { message: string; reason: unknown; afterMs: number }[];
  contexts: HandlerContext[];
  completed: string[];
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/** EchoService whose behaviour the message chooses: "slow:300", "fail:internal", "fail:reason", "fail:fields", "meta". */
export function echoService(observed: Observed): ServiceRegistration<typeof EchoService> {
  return [
    EchoService,
    {
      async echo(req, ctx) {
        observed.contexts.push(ctx);
        const [verb, arg] = req.message.split(":");
        if (verb === "slow") {
          const started = Date.now();
          ctx.signal.addEventListener("abort", () =>
            observed.aborts.push({
              message: req.message,
              reason: ctx.signal.reason,
              afterMs: Date.now() - started,
            }),
          );
          await sleep(Number(arg), ctx.signal);
          observed.completed.push(req.message);
        }
        if (verb === "fail" && arg === "internal")
          throw new Error("connection to db-primary:5432 refused (password=hunter2)");
        if (verb === "fail" && arg === "reason") {
          throw new DispatchError(Code.NotFound, "echo 42 not found", {
            reason: "ECHO_NOT_FOUND",
            domain: "echo.dispatch",
            metadata: { echo_id: "42" },
          });
        }
        if (verb === "fail" && arg === "fields") {
          const v = new FieldViolations();
          v.add("message", "must not start with fail").add("message.length", "must be short");
          v.throwIfAny();
        }
        if (verb === "meta") {
          ctx.setResponseHeader("x-echo-header", "h");
          ctx.setResponseTrailer("x-echo-trailer", "t");
          return { message: `${ctx.requestHeader("x-custom")}|${ctx.requestId}` };
        }
        return { message: req.message };
      },
    },
  ];
}
