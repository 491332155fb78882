// API keys. Callers send `authorization: Bearer <key>`; the server keeps only
// SHA-256 hashes, as `<key id> sha256:<hex>` entries: one per line in
// ROOKERY_API_KEYS_FILE (# starts a comment), or comma-separated in
// ROOKERY_API_KEYS. The key id becomes the caller's principal: the owner of
// the tasks it submits. `rookery keys create <id>` makes a key and its entry.
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { UnauthenticatedError } from "../domain/errors.js";
import { errorMessage } from "../logger.js";

export interface ApiKeyEntry {
  id: string;
  /** Hex SHA-256 of the key. */
  sha256: string;
}

const ENTRY = /^([A-Za-z0-9_.-]{1,64})\s+sha256:([0-9a-f]{64})$/;

export class ApiKeyFormatError extends Error {
  override readonly name = "ApiKeyFormatError";
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** A new random key and the entry to add for it. */
export function createApiKey(id: string): { key: string; entry: string } {
  const key = `rk_${randomBytes(24).toString("base64url")}`;
  return { key, entry: `${id} sha256:${hashApiKey(key)}` };
}

/** Parses entries; `source` names where they came from in errors ("ROOKERY_API_KEYS_FILE line 3"). */
export function parseApiKeys(lines: string[], source: (index: number) => string): ApiKeyEntry[] {
  const entries: ApiKeyEntry[] = [];
  const ids = new Set<string>();
  lines.forEach((raw, index) => {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") return;
    const match = ENTRY.exec(line);
    if (!match) throw new ApiKeyFormatError(`${source(index)}: expected "<key id> sha256:<64 hex digits>"`);
    const [, id, sha256] = match as unknown as [string, string, string];
    if (ids.has(id)) throw new ApiKeyFormatError(`${source(index)}: key id "${id}" appears twice`);
    ids.add(id);
    entries.push({ id, sha256 });
  });
  return entries;
}

/** Returns the principal (key id) for an `authorization` header, or throws UnauthenticatedError. */
export function apiKeyAuthenticator(entries: ApiKeyEntry[]): (authorization: string | undefined) => string {
  const byHash = new Map(entries.map((e) => [e.sha256, e.id]));
  return (authorization) => {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization?.trim() ?? "");
    if (!match) throw new UnauthenticatedError("missing API key: send `authorization: Bearer <key>`");
    const id = byHash.get(hashApiKey(match[1]!));
    if (id === undefined) throw new UnauthenticatedError("invalid API key");
    return id;
  };
}

/** The configured keys, or undefined when auth is off (neither setting given). */
export function loadApiKeys(settings: { apiKeysFile?: string; apiKeys?: string }): ApiKeyEntry[] | undefined {
  if (!settings.apiKeysFile && !settings.apiKeys) return undefined;
  const entries: ApiKeyEntry[] = [];
  if (settings.apiKeysFile) {
    const file = settings.apiKeysFile;
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      throw new ApiKeyFormatError(`ROOKERY_API_KEYS_FILE: cannot read ${file}: ${errorMessage(error)}`);
    }
    entries.push(...parseApiKeys(text.split("\n"), (i) => `ROOKERY_API_KEYS_FILE ${file} line ${i + 1}`));
  }
  if (settings.apiKeys) {
    entries.push(...parseApiKeys(settings.apiKeys.split(","), (i) => `ROOKERY_API_KEYS entry ${i + 1}`));
  }
  if (new Set(entries.map((e) => e.id)).size !== entries.length) {
    throw new ApiKeyFormatError("a key id appears both in ROOKERY_API_KEYS_FILE and in ROOKERY_API_KEYS");
  }
  return entries;
}
