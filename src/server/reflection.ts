// Server reflection is fed from proto/ (through @grpc/proto-loader), plus the
// health proto that grpc-health-check ships, so `grpcurl list` shows both services.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import * as protoLoader from "@grpc/proto-loader";

const PROTO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "../../proto");
const HEALTH_PROTO = createRequire(import.meta.url).resolve("grpc-health-check/proto/health/v1/health.proto");

export function reflectionPackageDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync(["rookery/v1/task_service.proto", HEALTH_PROTO], {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
  });
}
