// Signing secrets. ROOKERY_WEBHOOK_SECRET signs every delivery when auth is
// off; with API keys on, each key's deliveries are signed with a secret derived
// from it and the key id (HMAC-SHA256), so keys cannot verify, or forge, each
// other's deliveries and nothing more has to be stored. The operator gives a
// key's owner its secret: `rookery keys webhook-secret <key id>`.
import { createHmac } from "node:crypto";

const PREFIX = "whsec_";

/** The secret that signs the deliveries of tasks owned by `owner` ("" when auth is off). */
export function webhookSecretFor(serverSecret: string, owner: string): string {
  if (owner === "") return serverSecret;
  const key = Buffer.from(serverSecret.slice(PREFIX.length), "base64");
  return PREFIX + createHmac("sha256", key).update(`rookery webhook secret of API key ${owner}`).digest("base64");
}
