// An event subscriber that does nothing but acknowledge (bench/relay.ts): EventSubscriberService through
// the full runtime, with HandleEvents (BENCH_BATCH=1, as the services serve it) or HandleEvent alone (a
// subscriber built before HandleEvents, which the relay sends one event per call).
import { EventSubscriberService } from "../../gen/dispatch/events/v1/events_pb.ts";
import { handleEventsWith } from "../../packages/events/src/index.ts";
import { serve } from "../../packages/runtime/src/index.ts";

let calls = 0;
const handleOne = async () => ({ duplicate: false });
const batch = handleEventsWith(handleOne);
// Read by bench/relay.ts when it stops this process (stderr is a pipe: written synchronously).
process.on("exit", () => process.stderr.write(`CALLS ${calls}\n`));
const server = await serve({
  name: "bench-subscriber",
  host: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  adminPort: false,
  logLevel: "info",
  services: [
    [
      EventSubscriberService,
      {
        handleEvent: () => {
          calls++;
          return handleOne();
        },
        ...(process.env.BENCH_BATCH === "1"
          ? {
              handleEvents: (req: Parameters<typeof batch>[0], ctx: Parameters<typeof batch>[1]) => {
                calls++;
                return batch(req, ctx);
              },
            }
          : {}),
      },
    ],
  ],
  handleSignals: true,
});
process.stderr.write(`READY ${server.port}\n`);
