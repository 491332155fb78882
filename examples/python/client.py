"""Submit a task to Rookery and print its work as it happens: the model's text as it
streams, each tool call and result, and the status changes, until it ends.

    pip install grpcio==1.85.1 grpcio-tools==1.85.1
    examples/python/generate.sh
    python examples/python/client.py 127.0.0.1:50051 "What is 6*7?"
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "gen"))

import grpc  # noqa: E402
from rookery.v1 import task_pb2, task_service_pb2, task_service_pb2_grpc  # noqa: E402

address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
prompt = sys.argv[2] if len(sys.argv) > 2 else "What is 6*7? Use the calculator."

with grpc.insecure_channel(address) as channel:
    tasks = task_service_pb2_grpc.TaskServiceStub(channel)
    task = tasks.Submit(task_service_pb2.SubmitRequest(prompt=prompt, labels={"example": "python"})).task
    print(f"submitted {task.id}")

    # Replays from the first event, then follows live ones; ends after the terminal one.
    # include_output adds the model's output between the events, as it is written.
    watch = task_service_pb2.WatchRequest(id=task.id, after_sequence=0, include_output=True)
    for response in tasks.Watch(watch):
        if response.HasField("output"):
            print(response.output.text, end="", flush=True)
            continue
        event = response.event
        for message in event.messages:
            for call in message.tool_calls:
                print(f"\n-> {call.name}({call.arguments})")
            if message.role == "tool":
                print(f"<- {message.content[:200]}")
        print(f"\n#{event.sequence} {task_pb2.TaskStatus.Name(event.status)} (iterations {event.iterations})")

    task = tasks.Get(task_service_pb2.GetRequest(id=task.id)).task
    print(task.result if task.HasField("result") else f"error: {task.error}")
    sys.exit(0 if task.status == task_pb2.TASK_STATUS_COMPLETED else 1)
