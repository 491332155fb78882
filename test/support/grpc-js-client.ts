// A plain @grpc/grpc-js client of TaskService (generic client built from the
// generated descriptor), shaped like a Connect client so the same test can
// drive both listeners. grpc-js errors become ConnectErrors carrying the wire
// code, message and decoded google.rpc.Status details.
import { ScalarType, fromBinary, toBinary, type DescMessage } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { TaskService } from "../../gen/rookery/v1/task_service_pb.js";
import type { TaskClient } from "./harness.js";

/** `channel`: the client's grpc-js channel, to read its connectivity state. */
export type GrpcJsTaskClient = TaskClient & { close(): void; channel: grpc.Channel };

export function grpcJsTaskClient(address: string, metadata: Record<string, string> = {}): GrpcJsTaskClient {
  const definition: grpc.ServiceDefinition = Object.fromEntries(
    TaskService.methods.map((m) => [
      m.localName,
      {
        path: `/${TaskService.typeName}/${m.name}`,
        requestStream: false,
        responseStream: m.methodKind === "server_streaming",
        requestSerialize: (msg: object) => Buffer.from(toBinary(m.input, msg as never)),
        requestDeserialize: (b: Buffer) => fromBinary(m.input, b),
        responseSerialize: (msg: object) => Buffer.from(toBinary(m.output, msg as never)),
        responseDeserialize: (b: Buffer) => fromBinary(m.output, b),
      },
    ]),
  );
  const Client = grpc.makeGenericClientConstructor(definition, "TaskService");
  const client = new Client(address, grpc.credentials.createInsecure()) as unknown as Record<
    string,
    (this: grpc.Client, ...args: unknown[]) => unknown
  > &
    grpc.Client;
  const md = () => {
    const m = new grpc.Metadata();
    for (const [k, v] of Object.entries(metadata)) m.set(k, v);
    return m;
  };
  const callOptions = (call?: { timeoutMs?: number }) => (call?.timeoutMs ? { deadline: new Date(Date.now() + call.timeoutMs) } : {});
  const result: Record<string, unknown> = { close: () => client.close(), channel: client.getChannel() };
  for (const m of TaskService.methods) {
    const input = m.input;
    if (m.methodKind === "server_streaming") {
      result[m.localName] = (req: object, call?: { signal?: AbortSignal; timeoutMs?: number }) =>
        streamOf(
          client[m.localName]!.call(client, withType(input, req), md(), callOptions(call)) as grpc.ClientReadableStream<unknown>,
          call?.signal,
        );
    } else {
      result[m.localName] = (req: object, call?: { timeoutMs?: number }) =>
        new Promise((resolve, reject) =>
          client[m.localName]!.call(client, withType(input, req), md(), callOptions(call), (err: grpc.ServiceError | null, res: unknown) =>
            err ? reject(toConnectError(err)) : resolve(res),
          ),
        );
    }
  }
  return result as unknown as GrpcJsTaskClient;
}

function withType(desc: DescMessage, req: object): object {
  return { $typeName: desc.typeName, ...defaultsFor(desc), ...req };
}

/** toBinary needs every field present; fill the proto3 defaults the test left out. */
function defaultsFor(desc: DescMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of desc.fields) {
    if (f.fieldKind === "list") out[f.localName] = [];
    else if (f.fieldKind === "map") out[f.localName] = {};
    else if (f.fieldKind === "scalar" && !f.proto.proto3Optional) {
      out[f.localName] =
        f.scalar === ScalarType.STRING ? "" : f.scalar === ScalarType.BOOL ? false : BIG_SCALARS.includes(f.scalar) ? 0n : 0;
    } else if (f.fieldKind === "enum") out[f.localName] = 0;
  }
  return out;
}

async function* streamOf(call: grpc.ClientReadableStream<unknown>, signal?: AbortSignal): AsyncGenerator<never> {
  signal?.addEventListener("abort", () => call.cancel(), { once: true });
  try {
    for await (const message of call) yield message as never;
  } catch (error) {
    throw toConnectError(error as grpc.ServiceError);
  }
}

function toConnectError(err: grpc.ServiceError): ConnectError {
  const raw = err.metadata?.get("grpc-status-details-bin")[0];
  const details =
    raw instanceof Buffer ? fromBinary(StatusSchema, raw).details.map((a) => ({ type: a.typeUrl.split("/").pop()!, value: a.value })) : [];
  const error = new ConnectError(err.details, err.code as number);
  error.details.push(...details);
  return error;
}

/** The 64-bit integer scalars, which protobuf-es holds as bigint. */
const BIG_SCALARS: ScalarType[] = [ScalarType.INT64, ScalarType.UINT64, ScalarType.FIXED64, ScalarType.SFIXED64, ScalarType.SINT64];
