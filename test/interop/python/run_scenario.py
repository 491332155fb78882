"""The interop scenario (../scenario.json) driven by Python grpcio with stubs
generated from proto/ by grpcio-tools. Prints "ok <step>" per step; exits 1 at
the first step that fails.

usage: run_scenario.py ADDRESS SUITE SCENARIO_JSON STUBS_DIR
"""
import json
import re
import sys

address, suite, scenario_path, stubs_dir = sys.argv[1:5]
sys.path.insert(0, stubs_dir)

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from rookery.v1 import task_service_pb2, task_service_pb2_grpc  # noqa: E402


def substitute(value, variables):
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+)\}", lambda m: variables.get(m.group(1), ""), value)
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    return value


def lookup(value, path):
    for key in path.split("."):
        if key == "length" and isinstance(value, list):
            return len(value)
        if isinstance(value, list):
            value = value[int(key)] if int(key) < len(value) else None
        elif isinstance(value, dict):
            value = value.get(key)
        else:
            return None
    return value


def to_json(message):
    return json_format.MessageToDict(message)


def call(stub, method, request):
    message = json_format.ParseDict(request, getattr(task_service_pb2, method + "Request")())
    return to_json(getattr(stub, method)(message, timeout=30))


def watch(stub, request, until):
    message = json_format.ParseDict(request, task_service_pb2.WatchRequest())
    stream = stub.Watch(message, timeout=30)
    out = []
    for response in stream:
        out.append(to_json(response))
        if until and response.HasField("event") and json_format.MessageToDict(response)["event"].get("status") == until:
            stream.cancel()
            break
    return out


def run_step(stub, step, variables):
    if "call" in step:
        try:
            response = call(stub, step["call"], substitute(step.get("request", {}), variables))
        except grpc.RpcError as error:
            if step.get("expectCode") == error.code().name:
                return
            raise AssertionError(f"expected {step.get('expectCode', 'OK')}, got {error.code().name}: {error.details()}")
        if "expectCode" in step:
            raise AssertionError(f"expected {step['expectCode']}, but the call succeeded")
        for path, want in step.get("expect", {}).items():
            got, want = lookup(response, path), substitute(want, variables)
            if want is None:
                ok = got in (None, "")
            else:
                ok = got == want
            if not ok:
                raise AssertionError(f"{path}: expected {want!r}, got {got!r}")
        for name, path in step.get("save", {}).items():
            saved = lookup(response, path)
            variables[name] = "" if saved is None else str(saved)
        return
    request = substitute(step["watch"], variables)
    responses = watch(stub, request, step.get("until"))
    events = [r["event"] for r in responses if "event" in r]
    output_text = "".join(r["output"].get("text", "") for r in responses if "output" in r)
    if not events:
        raise AssertionError("no events")
    start = int(request.get("afterSequence", "0")) + 1
    sequences = [int(e["sequence"]) for e in events]
    if sequences != list(range(start, start + len(events))):
        raise AssertionError(f"sequences not dense: {sequences}")
    first, last = events[0]["status"], events[-1]["status"]
    for key, status in (("expectFirst", first), ("expectLast", last), ("until", last)):
        if key in step and step[key] != status:
            raise AssertionError(f"{key}: expected {step[key]}, got {status}")
    if "expectOutputText" in step and output_text != step["expectOutputText"]:
        raise AssertionError(f"output text {output_text!r}, expected {step['expectOutputText']!r}")
    last_text = next((m.get("content") for m in events[-1].get("messages", []) if m["role"] == "assistant"), None)
    if "expectLastEventText" in step and last_text != step["expectLastEventText"]:
        raise AssertionError(f"last event's text {last_text!r}, expected {step['expectLastEventText']!r}")


def main():
    with open(scenario_path) as f:
        steps = json.load(f)["steps"]
    variables = {"suite": suite}
    with grpc.insecure_channel(address) as channel:
        stub = task_service_pb2_grpc.TaskServiceStub(channel)
        for step in steps:
            try:
                run_step(stub, step, variables)
            except Exception as error:  # report which step, then fail
                print(f'step "{step["name"]}" failed: {error}', file=sys.stderr)
                sys.exit(1)
            print(f"ok {step['name']}", flush=True)


main()
