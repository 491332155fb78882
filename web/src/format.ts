// How the dashboard words statuses, times and sizes.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";

// The names and shortening the CLI uses, so both word statuses alike.
export { errorCodeName, shorten, statusName } from "../../src/cli/format.js";

export const STATUSES = [
  TaskStatus.PENDING,
  TaskStatus.RUNNING,
  TaskStatus.INPUT_REQUIRED,
  TaskStatus.COMPLETED,
  TaskStatus.FAILED,
  TaskStatus.CANCELLED,
] as const;

export function dateOf(timestamp: Timestamp | undefined): Date | undefined {
  return timestamp ? timestampDate(timestamp) : undefined;
}

/** "12s", "5m", "3h", "2d" since `date`. */
export function age(date: Date | undefined, now = Date.now()): string {
  if (!date) return "-";
  const seconds = Math.max(0, Math.round((now - date.getTime()) / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

/** `key=value, key2=value2` into a map; throws with what is wrong. */
export function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const part of text.split(",")) {
    const item = part.trim();
    if (item === "") continue;
    const at = item.indexOf("=");
    if (at <= 0) throw new Error(`label "${item}" is not key=value`);
    labels[item.slice(0, at).trim()] = item.slice(at + 1).trim();
  }
  return labels;
}

export function formatLabels(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
}
