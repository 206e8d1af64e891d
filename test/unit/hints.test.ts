// The commands a script's message tells you to run are the wrapper's, with the stack: `npm run up -- --stack
// <name>` and `npm run config -- ... --stack <name>` (scripts/pulumi.sh: odin's state, its passphrase, the
// deploy lock), never a bare `pulumi config set … -s odin`, `PULUMI_STACK=odin npm run up` or a plain `npm
// run up` that would deploy dev. Read from the scripts' code lines (comments may name them as they like).
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, test } from "vitest";
import { rotateOwnSecretHint } from "../../scripts/rotate";
import { parseArgs as statusArgs } from "../../scripts/status";
import { upCommand } from "../../scripts/target";

const SCRIPTS = path.resolve(__dirname, "../../scripts");

/** `file:line: text` of each code line (not a comment) that hands the user a command without the wrapper or the stack. */
function bareHints(): string[] {
    const out: string[] = [];
    for (const f of readdirSync(SCRIPTS).filter((f) => f.endsWith(".ts"))) {
        readFileSync(path.join(SCRIPTS, f), "utf8")
            .split("\n")
            .forEach((line, i) => {
                if (/^\s*(\/\/|\/?\*)/.test(line)) return;
                if (
                    /npm run up\b(?! -- --stack)/.test(line) ||
                    /pulumi config (set|rm)\b/.test(line) ||
                    /PULUMI_STACK=\S+ npm run/.test(line)
                )
                    out.push(`${f}:${i + 1}: ${line.trim()}`);
            });
    }
    return out;
}

describe("the commands the scripts' messages name", () => {
    test("are the wrapper's, with the stack", () => {
        expect(bareHints()).toEqual([]);
    });

    test("a password set in the config: rotate names the wrapper, asks for the value, never takes it as an argument", () => {
        expect(upCommand("odin")).toBe("npm run up -- --stack odin");
        expect(rotateOwnSecretHint("dbPassword", "odin")).toBe(
            "dbPassword is set in the stack's config, so it is yours to change: set the new one (npm run config -- set --secret dbPassword --stack odin, which asks for it) and run npm run up -- --stack odin, or remove it (npm run config -- rm dbPassword --stack odin) to have one generated and rotated",
        );
    });
});

test("npm run status -- odin (a bare stack name) is told to write --stack odin", () => {
    expect(() => statusArgs(["odin"], {})).toThrow(
        "unexpected argument odin: a stack goes after --stack: npm run status -- --stack odin",
    );
    expect(() => statusArgs(["prod"], {})).toThrow(/^unexpected argument prod$/);
    expect(statusArgs(["--stack", "odin"], {}).stack).toBe("odin");
});
