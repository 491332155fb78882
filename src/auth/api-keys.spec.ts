import { describe, expect, it } from "vitest";
import { UnauthenticatedError } from "../domain/errors.js";
import { ApiKeyFormatError, apiKeyAuthenticator, createApiKey, parseApiKeys } from "./api-keys.js";

describe("api keys", () => {
  const where = (i: number) => `line ${i + 1}`;

  it("should authenticate a created key by its hash and return its id", () => {
    const { key, entry } = createApiKey("team-a");
    expect(entry).not.toContain(key);
    const authenticate = apiKeyAuthenticator(parseApiKeys([entry], where));
    expect(authenticate(`Bearer ${key}`)).toBe("team-a");
  });

  it("should refuse a missing, malformed or unknown key", () => {
    const authenticate = apiKeyAuthenticator(parseApiKeys([createApiKey("a").entry], where));
    expect(() => authenticate(undefined)).toThrow(UnauthenticatedError);
    expect(() => authenticate("Basic abc")).toThrow(/missing API key/);
    expect(() => authenticate("Bearer rk_wrong")).toThrow(/invalid API key/);
  });

  it("should skip comments and name the line of a bad or duplicate entry", () => {
    const good = createApiKey("a").entry;
    expect(parseApiKeys(["# keys", "", `${good}  # ops`], where)).toHaveLength(1);
    expect(() => parseApiKeys([good, "b sha256:xyz"], where)).toThrow(
      new ApiKeyFormatError('line 2: expected "<key id> sha256:<64 hex digits>"'),
    );
    expect(() => parseApiKeys([good, good], where)).toThrow(/line 2: key id "a" appears twice/);
  });
});
