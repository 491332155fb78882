// The floor of each server stack: grpc.health.v1.Health/Check answered with a
// constant by a bare @grpc/grpc-js server and by a bare connect-node server,
// in this one process. Prints "ready <grpc port> <connect port>".
import * as http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus,
} from "../../gen/health/v1/health_pb.js";

const serving = create(HealthCheckResponseSchema, { status: HealthCheckResponse_ServingStatus.SERVING });

const server = new grpc.Server();
server.addService(
  {
    check: {
      path: "/grpc.health.v1.Health/Check",
      requestStream: false,
      responseStream: false,
      requestSerialize: (m: object) => Buffer.from(toBinary(HealthCheckRequestSchema, m as never)),
      requestDeserialize: (b: Buffer) => fromBinary(HealthCheckRequestSchema, b),
      responseSerialize: (m: object) => Buffer.from(toBinary(HealthCheckResponseSchema, m as never)),
      responseDeserialize: (b: Buffer) => fromBinary(HealthCheckResponseSchema, b),
    },
  },
  { check: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(null, serving) },
);
const grpcPort = await new Promise<number>((resolve, reject) =>
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
);

const connect = http2.createServer(
  connectNodeAdapter({ routes: (router: ConnectRouter) => router.service(Health, { check: () => serving }) }),
);
connect.listen(0, "127.0.0.1");
await new Promise((resolve) => connect.once("listening", resolve));
console.log(`ready ${grpcPort} ${(connect.address() as { port: number }).port}`);
