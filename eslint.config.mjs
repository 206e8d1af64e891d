// One linter for the program, the app, the tests and the benchmarks; CI allows zero warnings.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";

export default tseslint.config(
    {
        ignores: [
            "**/node_modules/**",
            "app/dist/**",
            "app/.test-build/**",
            "data/**",
            "data-removed-*/**",
            ".pulumi-state/**",
        ],
    },
    js.configs.recommended,
    ...tseslint.configs.recommended,
    {
        languageOptions: { globals: { ...globals.node } },
        rules: {
            // Test doubles and Pulumi mock state are loosely typed by nature; `any` stays visible in review.
            "@typescript-eslint/no-explicit-any": "off",
            "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
            "prefer-const": "error",
            eqeqeq: ["error", "always"],
        },
    },
    {
        files: ["**/*.js", "**/*.cjs"],
        languageOptions: { sourceType: "commonjs" },
        rules: { "@typescript-eslint/no-require-imports": "off" },
    },
);
