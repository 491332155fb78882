// A bare @grpc/grpc-js unary caller for one method, with protobuf-es messages:
// the client the floors were measured with, lighter than a full stub.
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

export function grpcJsUnary<I extends DescMessage, O extends DescMessage>(
  address: string,
  path: string,
  input: I,
  output: O,
): { call(req: MessageInitShape<I>): Promise<unknown>; close(): void } {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
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
