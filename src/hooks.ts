// Points in the code where a test may act (the crash matrix SIGKILLs the process
// at one). Production code calls `hooks?.reached(point)`; the hooks object is
// passed in from cli/main.ts, and only when a test asks for one (see
// testing/crash-points.ts), or by an in-process test. Each point is named after
// where it fires. At a few points the code waits for `pause`, so that an
// in-process test can hold it there while it does something else.
export type HookPoint =
  | "supervisor.before_claim"
  | "supervisor.after_claim"
  | "agent_loop.after_model_answer"
  | "supervisor.after_checkpoint"
  | "tool_registry.before_tool_run"
  | "task_service.after_cancel_commit"
  | "store.during_delete"
  | "store.after_conversation_part";

/** Points where the code awaits `Hooks.pause`. */
export type PausePoint = "supervisor.claimed" | "supervisor.run_ended";

export interface Hooks {
  reached(point: HookPoint): void;
  /** Resolves when the code may go on from `point`. */
  pause?(point: PausePoint): Promise<void>;
}
