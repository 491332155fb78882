// Server reflection answers from the exact descriptors buf compiled into gen/
// (protobuf-es keeps them), with every file they depend on, well-known types
// included. Building them from proto files with @grpc/proto-loader instead left
// out google/protobuf/timestamp.proto and mangled the health proto's map entry,
// which grpcurl rejects.
import { toBinary } from "@bufbuild/protobuf";
import type { DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { PackageDefinition } from "@grpc/proto-loader";
import { file_google_rpc_error_details } from "../../gen/google/rpc/error_details_pb.js";
import { file_health_v1_health } from "../../gen/health/v1/health_pb.js";
import { file_rookery_v1_task_service } from "../../gen/rookery/v1/task_service_pb.js";

// error_details too, so that clients can decode the google.rpc.BadRequest in errors.
const SERVED_FILES = [file_rookery_v1_task_service, file_health_v1_health, file_google_rpc_error_details];

/** A package definition whose only content @grpc/reflection reads: the serialized files. */
export function reflectionPackageDefinition(): PackageDefinition {
  const files = new Map<string, DescFile>();
  const add = (file: DescFile) => {
    if (files.has(file.name)) return;
    files.set(file.name, file);
    file.dependencies.forEach(add);
  };
  SERVED_FILES.forEach(add);
  const fileDescriptorProtos = [...files.values()].map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)));
  return {
    "rookery.v1.TaskService": { format: "Protocol Buffer 3 FileDescriptorProto", type: {}, fileDescriptorProtos },
  } as unknown as PackageDefinition;
}
