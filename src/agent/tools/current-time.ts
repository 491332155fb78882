import { z } from "zod";
import { defineTool } from "./tool.js";

export const currentTime = defineTool({
  name: "current_time",
  description: "Returns the current date and time, in UTC or in the given IANA time zone.",
  schema: z
    .object({
      timezone: z.string().max(64).optional().describe('An IANA time zone such as "Europe/Paris"; UTC when omitted.'),
    })
    .strict(),
  run({ timezone }) {
    const now = new Date();
    if (!timezone) return now.toISOString();
    try {
      const local = new Intl.DateTimeFormat("en-CA", {
        timeZone: timezone,
        dateStyle: "short",
        timeStyle: "long",
        hourCycle: "h23",
      }).format(now);
      return `${local} (${timezone}); UTC ${now.toISOString()}`;
    } catch {
      throw new Error(`unknown time zone "${timezone}"`);
    }
  },
});
