"""Decodes what Rookery sends with Python's protobuf runtime (upb), which limits
message nesting: Get and a FULL List page of one task over gRPC, and a
GetResponse from a file (bytes built elsewhere). Prints one line per check:
"<name> ok" or "<name> failed: <error>".

usage: decode_tasks.py ADDRESS TASK_ID STUBS_DIR RESPONSE_FILE
"""
import sys

address, task_id, stubs_dir, response_file = sys.argv[1:5]
sys.path.insert(0, stubs_dir)

import grpc  # noqa: E402
from rookery.v1 import task_pb2, task_service_pb2, task_service_pb2_grpc  # noqa: E402


def check(name, fn):
    try:
        fn()
        print(f"{name} ok")
    except Exception as error:  # noqa: BLE001 - the failure is what is reported
        print(f"{name} failed: {type(error).__name__}")


with grpc.insecure_channel(address) as channel:
    stub = task_service_pb2_grpc.TaskServiceStub(channel)
    check("get", lambda: stub.Get(task_service_pb2.GetRequest(id=task_id), timeout=10))
    check("list", lambda: stub.List(task_service_pb2.ListRequest(page_size=1000, view=task_pb2.TASK_VIEW_FULL), timeout=10))

with open(response_file, "rb") as f:
    data = f.read()
check("file", lambda: task_service_pb2.GetResponse.FromString(data))
