#!/usr/bin/env bash
# Submit a task and watch it to the end with grpcurl, using server reflection
# (no proto files). Usage: examples/grpcurl.sh [host:port] ["prompt"]
set -euo pipefail
grpcurl() { "${GRPCURL:-$(command -v grpcurl)}" "$@"; }
address=${1:-127.0.0.1:50051}
prompt=${2:-"What is 6*7? Use the calculator."}

grpcurl -plaintext "$address" list

id=$(grpcurl -plaintext -d "$(printf '{"prompt": %s, "labels": {"example": "grpcurl"}}' "$(printf '%s' "$prompt" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')")" \
  "$address" rookery.v1.TaskService/Submit | python3 -c 'import json,sys; print(json.load(sys.stdin)["task"]["id"])')
echo "submitted $id"

# Streams every event until the task completes, fails or is cancelled; with
# includeOutput, the model's output ("output": {"text": ...}) between them.
grpcurl -plaintext -d "{\"id\": \"$id\", \"includeOutput\": true}" "$address" rookery.v1.TaskService/Watch

grpcurl -plaintext -d "{\"id\": \"$id\"}" "$address" rookery.v1.TaskService/Get
