// The interpreter of scenario.json for the stacks driven from TypeScript
// (grpc-js, connect-web, curl, grpcurl). python/ and go/ hold the same
// interpreter in those languages. A driver only knows how to make one call or
// read one Watch stream in proto JSON; everything else is here.
import { readFileSync } from "node:fs";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface Step {
  name: string;
  call?: "Submit" | "Get" | "List" | "Resume" | "Cancel";
  watch?: Json;
  request?: Json;
  until?: string;
  expect?: Record<string, Json>;
  expectCode?: string;
  expectFirst?: string;
  expectLast?: string;
  expectOutputText?: string;
  expectLastEventText?: string;
  save?: Record<string, string>;
}

export interface Driver {
  /** One unary call; throws RpcFailure for a non-OK status. */
  call(method: string, request: Json): Promise<Json>;
  /** WatchResponse messages, until one has event.status === until (if given) or the stream ends. */
  watch(request: Json, until?: string): Promise<Json[]>;
}

export class RpcFailure extends Error {
  readonly code: string;
  constructor(code: string | number, message: string) {
    super(message);
    this.code = canonicalCode(code);
  }
}

const CODE_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

/** 5, "NotFound", "not_found" and "NOT_FOUND" are all NOT_FOUND. */
export function canonicalCode(code: string | number): string {
  if (typeof code === "number") return CODE_NAMES[code] ?? String(code);
  return code.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

export function loadScenario(): Step[] {
  return (JSON.parse(readFileSync(new URL("./scenario.json", import.meta.url), "utf8")) as { steps: Step[] }).steps;
}

/** Runs every step; returns one line per step, throws at the first that fails. */
export async function runScenario(driver: Driver, suite: string): Promise<string[]> {
  const vars: Record<string, string> = { suite };
  const done: string[] = [];
  for (const step of loadScenario()) {
    try {
      if (step.call) await callStep(driver, step, vars);
      else await watchStep(driver, step, vars);
    } catch (error) {
      throw new Error(`step "${step.name}" failed: ${(error as Error).message}`, { cause: error });
    }
    done.push(`ok ${step.name}`);
  }
  return done;
}

async function callStep(driver: Driver, step: Step, vars: Record<string, string>): Promise<void> {
  let response: Json;
  try {
    response = await driver.call(step.call!, substitute(step.request ?? {}, vars));
  } catch (error) {
    if (error instanceof RpcFailure && step.expectCode) {
      if (error.code !== step.expectCode)
        throw new Error(`expected ${step.expectCode}, got ${error.code}: ${error.message}`, { cause: error });
      return;
    }
    throw error;
  }
  if (step.expectCode) throw new Error(`expected ${step.expectCode}, but the call succeeded`);
  for (const [path, want] of Object.entries(step.expect ?? {})) {
    const got = lookup(response, path);
    const expected = substitute(want, vars);
    const same = expected === null ? got === undefined || got === "" || got === null : JSON.stringify(got) === JSON.stringify(expected);
    if (!same) throw new Error(`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}`);
  }
  for (const [name, path] of Object.entries(step.save ?? {})) vars[name] = stringOf(lookup(response, path));
}

async function watchStep(driver: Driver, step: Step, vars: Record<string, string>): Promise<void> {
  const request = substitute(step.watch!, vars) as { afterSequence?: string };
  const responses = await driver.watch(request, step.until);
  const events = responses.flatMap((r) => (lookup(r, "event") ? [lookup(r, "event") as { sequence: string; status: string }] : []));
  const outputText = responses.map((r) => (lookup(r, "output.text") as string | undefined) ?? "").join("");
  const lastText = (
    lookup(responses.filter((r) => lookup(r, "event")).at(-1) ?? null, "event.messages") as { role: string; content?: string }[] | undefined
  )?.find((m) => m.role === "assistant")?.content;
  if (events.length === 0) throw new Error("no events");
  const from = Number(request.afterSequence ?? 0) + 1;
  events.forEach((e, i) => {
    if (Number(e.sequence) !== from + i) throw new Error(`sequences not dense: ${events.map((x) => x.sequence).join(",")}`);
  });
  const first = events[0]!.status;
  const last = events[events.length - 1]!.status;
  if (step.expectFirst && first !== step.expectFirst) throw new Error(`first status ${first}, expected ${step.expectFirst}`);
  if (step.expectLast && last !== step.expectLast) throw new Error(`last status ${last}, expected ${step.expectLast}`);
  if (step.until && last !== step.until) throw new Error(`stream ended at ${last} before ${step.until}`);
  if (step.expectOutputText !== undefined && outputText !== step.expectOutputText) {
    throw new Error(`output text ${JSON.stringify(outputText)}, expected ${JSON.stringify(step.expectOutputText)}`);
  }
  if (step.expectLastEventText !== undefined && lastText !== step.expectLastEventText) {
    throw new Error(`last event's text ${JSON.stringify(lastText)}, expected ${JSON.stringify(step.expectLastEventText)}`);
  }
}

function substitute(value: Json, vars: Record<string, string>): Json {
  if (typeof value === "string") return value.replace(/\$\{(\w+)\}/g, (_, name: string) => vars[name] ?? "");
  if (Array.isArray(value)) return value.map((v) => substitute(v, vars));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, vars)]));
  return value;
}

/** "task.pendingToolCalls.0.id"; a trailing ".length" is an array's length. */
function lookup(value: Json, path: string): Json | undefined {
  let current: Json | undefined = value;
  for (const key of path.split(".")) {
    if (key === "length" && Array.isArray(current)) return current.length;
    if (current === null || typeof current !== "object") return undefined;
    current = Array.isArray(current) ? current[Number(key)] : current[key];
  }
  return current;
}

/** A saved value as text: strings and numbers as they are, anything else as JSON. */
function stringOf(value: unknown): string {
  if (value === undefined || value === null) return "";
  return typeof value === "string" || typeof value === "number" || typeof value === "bigint" ? String(value) : JSON.stringify(value);
}
