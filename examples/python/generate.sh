#!/usr/bin/env bash
# Generates the Python stubs from proto/ into examples/python/gen (needs grpcio-tools).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}
wkt=$("$python" -c "import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), '_proto'))")
mkdir -p "$here/gen"
"$python" -m grpc_tools.protoc -I "$here/../../proto" -I "$wkt" \
  --python_out="$here/gen" --grpc_python_out="$here/gen" rookery/v1/task.proto rookery/v1/task_service.proto
