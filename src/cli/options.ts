// Parsers of the CLI's flag values. A value a request field cannot hold (a word
// where a count goes, a negative number, a fraction, one past the field's range)
// is bad usage: commander reports it naming the flag and the CLI exits 2, where
// the request's encoder would otherwise fail it as an internal error or a
// fraction would be cut to a whole number without a word.
import { InvalidArgumentError } from "commander";
import { create } from "@bufbuild/protobuf";
import { DurationSchema, type Duration } from "@bufbuild/protobuf/wkt";
import { parseDuration } from "../config.js";

const DIGITS = /^[0-9]+$/;
const UINT32_MAX = 2 ** 32 - 1;
export const INT32_MAX = 2 ** 31 - 1;
const UINT64_MAX = 2n ** 64n - 1n;

/** A whole number from 0 to `max` (a uint32 field by default; an int32 one gives INT32_MAX). */
export function wholeNumber(max: number = UINT32_MAX): (value: string) => number {
  return (value) => {
    if (!DIGITS.test(value) || Number(value) > max) throw new InvalidArgumentError(`Expected a whole number from 0 to ${max}.`);
    return Number(value);
  };
}

/** A whole number from 0 to 2^64 - 1 (a uint64 field). */
export function wholeBigint(value: string): bigint {
  if (!DIGITS.test(value) || BigInt(value) > UINT64_MAX) throw new InvalidArgumentError(`Expected a whole number from 0 to ${UINT64_MAX}.`);
  return BigInt(value);
}

/** "90s", "10m", "24h", "7d" (or milliseconds) as a google.protobuf.Duration. */
export function duration(value: string): Duration {
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) throw new InvalidArgumentError("Expected a duration such as 90s, 10m or 24h.");
  return create(DurationSchema, { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 });
}
