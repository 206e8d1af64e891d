import { defineConfig } from "vitest/config";

export default defineConfig({
    test: {
        include: ["test/**/*.test.ts", "app/test/**/*.test.ts"],
        // Integration and end-to-end tests start real servers and containers: give them room, and run test
        // files in separate processes so that Pulumi's global mock state never leaks between files.
        pool: "forks",
        testTimeout: 60_000,
        hookTimeout: 180_000,
    },
});
