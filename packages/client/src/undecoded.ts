import {
  create,
  type DescMessage,
  type DescMethodUnary,
  isMessage,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { type CallOptions, createContextValues } from "@connectrpc/connect";
import { transportOf } from "./create-client.ts";
import { kUndecodedReply } from "./grpc-unary-transport.ts";

/**
 * A unary call through a client made by createClient, whose reply comes back as its protobuf bytes
 * instead of a message: for a caller that passes a reply on or rewrites it on the wire (the gateway's
 * wire mappings) and would otherwise decode it only to encode it again. The call is the client's own
 * in every other way: deadline, cancellation, retries, hedging, breaker, balancing, metrics, traces and
 * the incoming call's context. A client that does not decode through this package's transport (a test's
 * stand-in, say) is called as usual and its reply encoded, so the bytes are the reply's either way.
 */
export async function callUndecoded<I extends DescMessage, O extends DescMessage>(
  client: object,
  method: DescMethodUnary<I, O>,
  input: MessageInitShape<I>,
  options: CallOptions = {},
): Promise<Uint8Array> {
  const transport = transportOf(client);
  if (!transport) {
    const call = (client as Record<string, (i: unknown, o: CallOptions) => Promise<MessageShape<O>>>)[
      method.localName
    ];
    if (!call) throw new Error(`the client has no method ${method.localName}`);
    const reply = await call.call(client, input, options);
    return toBinary(method.output, isMessage(reply, method.output) ? reply : create(method.output, reply));
  }
  const contextValues = (options.contextValues ?? createContextValues()).set(kUndecodedReply, true);
  const res = await transport.unary(
    method,
    options.signal,
    options.timeoutMs,
    options.headers,
    input,
    contextValues,
  );
  options.onHeader?.(res.header);
  options.onTrailer?.(res.trailer);
  const message: unknown = res.message;
  return message instanceof Uint8Array ? message : toBinary(method.output, res.message);
}
