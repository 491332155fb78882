// Drivers of the scenario for the stacks run from TypeScript. Each turns a
// proto-JSON request into a real call over a real socket and the response back
// into proto JSON.
import { spawn } from "node:child_process";
import { fromJson, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { TaskService } from "../../gen/rookery/v1/task_service_pb.js";
import type { TaskClient } from "../support/harness.js";
import { RpcFailure, type Driver, type Json } from "./scenario.js";

const method = (name: string) => TaskService.methods.find((m) => m.name === name)!;

/** A generated-client stack: @grpc/grpc-js (via grpcJsTaskClient) or a Connect/gRPC-Web transport. */
export function clientDriver(client: TaskClient): Driver {
  const failure = (error: unknown) => (error instanceof ConnectError ? new RpcFailure(Code[error.code], error.rawMessage) : error);
  return {
    async call(name, request) {
      const m = method(name);
      const call = client[m.localName as "get"] as (r: unknown) => Promise<never>;
      try {
        const response: Json = toJson(m.output, await call(fromJson(m.input, request)));
        return response;
      } catch (error) {
        throw failure(error);
      }
    },
    async watch(request, until) {
      const m = method("Watch");
      const controller = new AbortController();
      const out: Json[] = [];
      try {
        for await (const response of client.watch(fromJson(m.input, request) as never, { signal: controller.signal })) {
          const json = toJson(m.output, response) as { event: { status: string } };
          out.push(json);
          if (until && json.event.status === until) break;
        }
      } catch (error) {
        throw failure(error);
      } finally {
        controller.abort();
      }
      return out;
    },
  };
}

/** curl speaking the Connect protocol: JSON over plain HTTP/1.1; Watch with enveloped connect+json. */
export function curlDriver(baseUrl: string): Driver {
  return {
    async call(name, request) {
      const { stdout } = await run(
        "curl",
        [
          "-sS",
          "-w",
          "\n%{http_code}",
          "-X",
          "POST",
          "-H",
          "content-type: application/json",
          "--data-binary",
          "@-",
          `${baseUrl}/rookery.v1.TaskService/${name}`,
        ],
        { input: JSON.stringify(request) },
      );
      const text = stdout.toString("utf8");
      const cut = text.lastIndexOf("\n");
      const body = JSON.parse(text.slice(0, cut)) as Json & { code?: string; message?: string };
      if (text.slice(cut + 1) !== "200") throw new RpcFailure(body.code!, body.message ?? "");
      return body;
    },
    async watch(request, until) {
      const json = Buffer.from(JSON.stringify(request));
      const envelope = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), json]);
      envelope.writeUInt32BE(json.length, 1);
      const out: Json[] = [];
      let pending = Buffer.alloc(0);
      let endError: { code: string; message: string } | undefined;
      await run(
        "curl",
        [
          "-sS",
          "-N",
          "-X",
          "POST",
          "-H",
          "content-type: application/connect+json",
          "--data-binary",
          "@-",
          `${baseUrl}/rookery.v1.TaskService/Watch`,
        ],
        {
          input: envelope,
          onChunk: (chunk, stop) => {
            pending = Buffer.concat([pending, chunk]);
            while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
              const flags = pending[0]!;
              const message = JSON.parse(pending.subarray(5, 5 + pending.readUInt32BE(1)).toString("utf8")) as Json & {
                error?: typeof endError;
                event?: { status: string };
              };
              pending = pending.subarray(5 + pending.readUInt32BE(1));
              if (flags & 0x02) {
                endError = message.error; // end of stream: an error, or {} for OK
              } else {
                out.push(message);
                if (until && message.event?.status === until) stop();
              }
            }
          },
        },
      );
      if (endError) throw new RpcFailure(endError.code, endError.message);
      return out;
    },
  };
}

/** grpcurl with server reflection only: no proto files. */
export function grpcurlDriver(grpcurl: string, address: string): Driver {
  const args = (name: string) => ["-plaintext", "-format-error", "-d", "@", address, `rookery.v1.TaskService/${name}`];
  return {
    async call(name, request) {
      const { stdout, stderr, code } = await run(grpcurl, args(name), { input: JSON.stringify(request), allowFailure: true });
      if (code !== 0) throw statusFrom(stderr);
      return JSON.parse(stdout.toString("utf8")) as Json;
    },
    async watch(request, until) {
      const out: Json[] = [];
      const splitter = jsonObjects();
      const { code, stderr } = await run(grpcurl, args("Watch"), {
        input: JSON.stringify(request),
        allowFailure: true,
        onChunk: (chunk, stop) => {
          for (const message of splitter(chunk.toString("utf8"))) {
            out.push(message);
            if (until && (message as { event?: { status?: string } }).event?.status === until) stop();
          }
        },
      });
      if (code !== 0 && code !== null) throw statusFrom(stderr);
      return out;
    },
  };
}

/** grpcurl exits 64 + the status code and, with -format-error, prints the status as JSON on stderr. */
function statusFrom(stderr: Buffer): RpcFailure {
  const text = stderr.toString("utf8");
  const status = JSON.parse(text.slice(text.indexOf("{"))) as { code: number; message: string };
  return new RpcFailure(status.code, status.message);
}

/** Splits a stream of concatenated, pretty-printed JSON objects (grpcurl's output). */
function jsonObjects(): (text: string) => Json[] {
  let buffer = "";
  let depth = 0;
  let inString = false;
  let escaped = false;
  let start = -1;
  return (text) => {
    const found: Json[] = [];
    const offset = buffer.length;
    buffer += text;
    for (let i = offset; i < buffer.length; i++) {
      const c = buffer[i];
      if (inString) {
        if (escaped) escaped = false;
        else if (c === "\\") escaped = true;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === "{") {
        if (depth++ === 0) start = i;
      } else if (c === "}" && --depth === 0) {
        found.push(JSON.parse(buffer.slice(start, i + 1)) as Json);
      }
    }
    if (depth === 0) buffer = "";
    else {
      buffer = buffer.slice(start);
      start = 0;
    }
    return found;
  };
}

interface RunResult {
  stdout: Buffer;
  stderr: Buffer;
  code: number | null;
}

export interface RunOptions {
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  /** Resolve with the exit code instead of rejecting on a non-zero one. */
  allowFailure?: boolean;
  /** Sees stdout as it comes; may stop the command early (its exit code is then null). */
  onChunk?: (chunk: Buffer, stop: () => void) => void;
}

/** Runs a command asynchronously (the server under test may live in this process). */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const { input = "", env, allowFailure = false, onChunk } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], ...(env ? { env } : {}) });
    const chunks: Buffer[] = [];
    const stderr: Buffer[] = [];
    let stopped = false;
    const stop = () => {
      stopped = true;
      child.kill("SIGTERM");
    };
    child.stdout.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      if (!stopped) onChunk?.(chunk, stop);
    });
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.on("error", reject);
    child.on("close", (code) => {
      const result = { stdout: Buffer.concat(chunks), stderr: Buffer.concat(stderr) };
      if (stopped) return resolve({ ...result, code: null });
      if (code !== 0 && !allowFailure) return reject(new Error(`${command} exited ${code}: ${result.stderr.toString()}`));
      resolve({ ...result, code });
    });
    child.stdin.end(input);
  });
}
