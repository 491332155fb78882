import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { SETTINGS } from "../../src/config.js";

describe("README.md", () => {
  const readme = readFileSync("README.md", "utf8");

  it("should start with the install-and-run and the test commands", () => {
    const firstBlock = readme.split("```")[1] ?? "";
    expect(firstBlock).toContain("npm install && npm start");
    expect(firstBlock).toContain("npm test");
  });

  it("should list every setting's env var and flag in the configuration table", () => {
    for (const setting of Object.values(SETTINGS)) {
      const flag = setting.flag.split(" ")[0]!;
      expect(readme, setting.env).toMatch(new RegExp(`\\| \`${setting.env}\` \\| \`${flag}\` \\|`));
    }
  });
});
