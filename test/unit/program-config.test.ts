// The program refuses bad configuration before it declares a single resource.
import { beforeAll, expect, test } from "vitest";

let error: Error | undefined;
let registered: string[] = [];

beforeAll(async () => {
    const { runRefusedProgram } = await import("../../support/mockProgram");
    ({ error, registered } = await runRefusedProgram(
        "dev",
        { appPort: "70000", dbPassword: "short pw", redisPassword: 'has"quote-and-long', appport: "8001" },
        ["dbPassword", "redisPassword"],
    ));
});

test("a bad port, a misspelt key and bad secrets fail the run with every problem listed and no resource declared", () => {
    expect(error?.constructor.name).toBe("RunError");
    expect(error?.message).toBe(
        [
            "Invalid stack configuration (4 problems):",
            "  - `marvel-rivals-stats:appport` is not a setting of this project; did you mean appPort? Remove it with `npm run config -- rm appport --stack dev` and set appPort instead (docs/configuration.md lists every key).",
            '  - `marvel-rivals-stats:appPort` is "70000": must be a whole number from 1 to 65535.',
            "  - `marvel-rivals-stats:dbPassword` (value hidden) must be at least 12 characters without spaces; set it with `npm run config -- set --secret dbPassword <value> --stack dev` or unset it to have one generated.",
            "  - `marvel-rivals-stats:redisPassword` (value hidden) must not contain quotes or backslashes (Redis' config syntax); set another with `npm run config -- set --secret redisPassword <value> --stack dev`.",
            "Fix with `npm run config -- set <key> <value> --stack dev` (or edit Pulumi.dev.yaml) and run again.",
        ].join("\n"),
    );
    expect(error?.message).not.toContain("short pw");
    expect(registered).toEqual([]);
});
