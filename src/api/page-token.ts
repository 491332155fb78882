// Opaque keyset page tokens: the (created_at, id) of the last task of a page,
// plus a fingerprint of the filters so a token cannot be reused with others.
import { createHash } from "node:crypto";
import { InvalidArgumentError } from "../domain/errors.js";

export interface PagePosition {
  createdAt: Date;
  id: string;
}

export function filterFingerprint(filters: unknown): string {
  return createHash("sha256").update(JSON.stringify(filters)).digest("base64url").slice(0, 12);
}

export function encodePageToken(position: PagePosition, fingerprint: string): string {
  return Buffer.from(JSON.stringify({ t: position.createdAt.getTime(), i: position.id, f: fingerprint })).toString("base64url");
}

export function decodePageToken(token: string, fingerprint: string): PagePosition {
  const invalid = (why: string) => InvalidArgumentError.field("page_token", why);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw invalid("not a token this service issued");
  }
  const p = parsed as { t?: unknown; i?: unknown; f?: unknown };
  if (typeof p?.t !== "number" || !Number.isFinite(p.t) || typeof p.i !== "string" || typeof p.f !== "string") {
    throw invalid("not a token this service issued");
  }
  if (p.f !== fingerprint) throw invalid("was issued for other filters; repeat the request's filters or start over");
  return { createdAt: new Date(p.t), id: p.i };
}
