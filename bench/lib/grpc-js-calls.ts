// Bare @grpc/grpc-js calls with protobuf-es messages: the client the issue's
// floors were measured with, lighter than a full generated stub.
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

/** A channel of its own (not shared with other clients to the same address). */
export function grpcJsClient(address: string): grpc.Client {
  return new grpc.Client(address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
}

export function grpcJsUnary<I extends DescMessage, O extends DescMessage>(
  address: string,
  path: string,
  input: I,
  output: O,
): { call(req: MessageInitShape<I>): Promise<unknown>; close(): void } {
  const client = grpcJsClient(address);
  const serialize = (m: MessageInitShape<I>) => Buffer.from(toBinary(input, create(input, m)));
  const deserialize = (b: Buffer) => fromBinary(output, b);
  return {
    call: (req) =>
      new Promise((resolve, reject) =>
        client.makeUnaryRequest(path, serialize, deserialize, req, (error, response) => (error ? reject(error) : resolve(response))),
      ),
    close: () => client.close(),
  };
}

/** Opens a server stream; `onMessage` sees each message; resolves when it ends (or is cancelled). */
export function grpcJsStream<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  path: string,
  input: I,
  output: O,
  req: MessageInitShape<I>,
  onMessage: (m: MessageShape<O>) => void,
  signal: AbortSignal,
): Promise<void> {
  const call = client.makeServerStreamRequest(
    path,
    (m: MessageInitShape<I>) => Buffer.from(toBinary(input, create(input, m))),
    (b: Buffer) => fromBinary(output, b),
    req,
  );
  signal.addEventListener("abort", () => call.cancel(), { once: true });
  call.on("data", onMessage);
  return new Promise((resolve, reject) => {
    call.on("end", resolve);
    call.on("error", (error: grpc.ServiceError) => (error.code === grpc.status.CANCELLED ? resolve() : reject(error)));
  });
}
