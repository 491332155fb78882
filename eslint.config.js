// Lint for the whole team (`npm run lint`, part of `npm test`): typescript-eslint's
// type-aware recommended rules, with the promise rules that catch real bugs in an
// async server (no floating or misused promises) as errors.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    ignores: [
      "gen/**",
      "dist/**",
      "web/dist/**",
      "test-output/**",
      "node_modules/**",
      ".cache/**",
      "examples/**",
      "test/interop/go/**",
      "data/**",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      // Adapters implement a port whose methods return promises; some have nothing to await.
      "@typescript-eslint/require-await": "off",
      // `_name` marks a value left out on purpose (destructuring a field away).
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" },
      ],
    },
  },
  {
    // Tests and benchmarks read JSON and wire bytes of other programs: values of type `any` there are the point.
    files: ["test/**", "bench/**"],
    rules: {
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/no-unsafe-call": "off",
    },
  },
  {
    files: ["**/*.js", "bin/**"],
    ...tseslint.configs.disableTypeChecked,
  },
);
