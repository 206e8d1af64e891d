// `npm run upgrade` (scripts/upgrade.ts): its arguments, and the row comparison that decides whether the new
// data directory holds the dump. The upgrade itself runs on a real engine: test/e2e/database-changes.test.ts.
import { describe, expect, it } from "vitest";
import { UsageError } from "../../scripts/backups";
import { countDifferences, parseCounts, parseUpgradeArgs } from "../../scripts/upgrade";

describe("npm run upgrade", () => {
    it("takes the stack and the image of the new major version, which it requires", () => {
        expect(parseUpgradeArgs(["--stack", "odin", "--to", "postgres:17-alpine"], {})).toEqual({
            stack: "odin",
            to: "postgres:17-alpine",
        });
        expect(parseUpgradeArgs(["--to", "postgres:17-alpine"], { PULUMI_STACK: "odin" }).stack).toBe("odin");
        expect(() => parseUpgradeArgs(["--stack", "odin"], {})).toThrow(
            new UsageError("--to IMAGE is required: the PostgreSQL image of the new major version"),
        );
        expect(() => parseUpgradeArgs(["--to"], {})).toThrow(new UsageError("--to needs a value"));
        expect(() => parseUpgradeArgs(["--force"], {})).toThrow(new UsageError("unexpected argument --force"));
    });

    it("switches only when every table holds the dump's rows: a missing, extra or short table is named", () => {
        const got = parseCounts("public.heroes|40\npublic.matches|1200\nmigration_runner.history|4\n");
        expect(got).toEqual({ "public.heroes": 40, "public.matches": 1200, "migration_runner.history": 4 });
        expect(countDifferences({ ...got }, got)).toEqual([]);
        expect(countDifferences({ "public.heroes": 40, "public.matches": 1201, "public.players": 3 }, got)).toEqual([
            "migration_runner.history: absent -> 4",
            "public.matches: 1201 -> 1200",
            "public.players: 3 -> absent",
        ]);
        expect(parseCounts("")).toEqual({});
    });
});
