// The Go callers (bench/peers/go-submitter): built from the Go module proxy with
// stubs generated from proto/, as the interop suite builds its Go client.
import { execFile } from "node:child_process";
import { buildGoClient } from "../../test/support/toolchains.js";

export function buildGoSubmitter(): string {
  return buildGoClient("bench/peers/go-submitter");
}

/**
 * Submits `count` tasks to the gRPC listener at `address`, `callers` at a time, prompts
 * "<prompt>.<n>". Resolves once the submitter has exited and been reaped (its CPU is then
 * in this process's reaped children's: `cpuMicros(pid, { reapedChildren: true })`); rejects
 * unless every call answered OK.
 */
export function goSubmit(bin: string, address: string, count: number, callers: number, prompt: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(bin, [address, String(count), String(callers), prompt], (error, stdout, stderr) => {
      if (error) reject(new Error(`go-submitter: ${stderr.trim() || error.message}`));
      else if (stdout.trim() !== `submitted ${count}`) reject(new Error(`go-submitter said: ${stdout.trim()}`));
      else resolve();
    });
  });
}
