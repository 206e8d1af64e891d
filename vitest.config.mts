import { existsSync } from "node:fs";
import { defineConfig } from "vitest/config";

// The pg_dump that `.ci/setup` provides (pg_dump 17 in a Debian trixie chroot) when none is configured:
// the migration runner's backup tests need one that can dump PostgreSQL 16.
const ciPgDump = "/var/cache/marvel-rivals-stats/pg_dump-17";
const env: Record<string, string> = {};
if (!process.env.PG_DUMP && existsSync(ciPgDump)) env.PG_DUMP = ciPgDump;

export default defineConfig({
    test: {
        // The three tiers (README, "Tests"), each runnable alone: `npm run test:unit` is the fast loop.
        projects: [
            { extends: true, test: { name: "unit", include: ["test/unit/**/*.test.ts"] } },
            {
                extends: true,
                test: { name: "integration", include: ["app/test/**/*.test.ts", "test/integration/**/*.test.ts"] },
            },
            { extends: true, test: { name: "e2e", include: ["test/e2e/**/*.test.ts"] } },
        ],
        env,
        // Integration and end-to-end tests start real servers and containers: give them room, and run test
        // files in separate processes so that Pulumi's global mock state never leaks between files.
        pool: "forks",
        testTimeout: 60_000,
        hookTimeout: 180_000,
    },
});
