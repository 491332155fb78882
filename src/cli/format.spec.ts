import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { TaskEventKind, TaskEventSchema, TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { formatEvent, forTerminal } from "./format.js";

const event = (kind: TaskEventKind, previousStatus: TaskStatus, status: TaskStatus, iterations = 2) =>
  create(TaskEventSchema, { sequence: 5n, kind, previousStatus, status, iterations });

describe("formatEvent()", () => {
  it("should print a lease takeover (RUNNING to RUNNING, a status change) as a status change, not as a checkpoint", () => {
    expect(formatEvent(event(TaskEventKind.STATUS_CHANGED, TaskStatus.RUNNING, TaskStatus.RUNNING))).toBe(
      "#5 running        running -> running (iterations 2)",
    );
  });

  it("should print a checkpoint as the iteration it stored", () => {
    expect(formatEvent(event(TaskEventKind.ITERATION_CHECKPOINTED, TaskStatus.RUNNING, TaskStatus.RUNNING))).toBe(
      "#5 running        iteration 2 checkpointed (iterations 2)",
    );
  });

  it("should print the first event as the submission", () => {
    expect(formatEvent(event(TaskEventKind.STATUS_CHANGED, TaskStatus.UNSPECIFIED, TaskStatus.PENDING, 0))).toBe(
      "#5 pending        submitted (iterations 0)",
    );
  });
});

describe("forTerminal()", () => {
  it("should print escape sequences and other control characters as visible escapes, keeping newlines, tabs and other text", () => {
    expect(forTerminal("a\x1b[2Jb\x1b]52;c;cHduZWQ=\x07\tc\u009b1m\x7f\nd é 😀")).toBe(
      "a\\x1b[2Jb\\x1b]52;c;cHduZWQ=\\x07\tc\\x9b1m\\x7f\nd é 😀",
    );
  });

  it("should drop carriage returns, which could only overwrite what was printed", () => {
    expect(forTerminal("line one\r\nfake prompt$ \rreal")).toBe("line one\nfake prompt$ real");
  });
});
