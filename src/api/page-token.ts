// Opaque keyset page tokens, with a fingerprint of the request's filters so a token
// cannot be reused with others: List's hold the (created_at, id) of the last task of
// a page, ListWebhookDeliveries' the sequence of the last delivery.
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
  const p = readToken(token, fingerprint, (p) => typeof p.t === "number" && Number.isFinite(p.t) && typeof p.i === "string");
  return { createdAt: new Date(p.t as number), id: p.i as string };
}

export function encodeSequenceToken(sequence: number, fingerprint: string): string {
  return Buffer.from(JSON.stringify({ s: sequence, f: fingerprint })).toString("base64url");
}

export function decodeSequenceToken(token: string, fingerprint: string): number {
  const p = readToken(token, fingerprint, (p) => Number.isSafeInteger(p.s) && (p.s as number) >= 0);
  return p.s as number;
}

/** The token's fields, once it is known to be one this service issued for these filters. */
function readToken(token: string, fingerprint: string, isValid: (p: Record<string, unknown>) => boolean): Record<string, unknown> {
  const invalid = (why: string) => InvalidArgumentError.field("page_token", why);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw invalid("not a token this service issued");
  }
  const p = parsed as Record<string, unknown> | null;
  if (typeof p !== "object" || p === null || typeof p.f !== "string" || !isValid(p)) throw invalid("not a token this service issued");
  if (p.f !== fingerprint) throw invalid("was issued for other filters; repeat the request's filters or start over");
  return p;
}
