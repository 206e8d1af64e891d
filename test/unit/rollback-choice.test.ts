// What `npm run rollback` goes back to, from the release tags kept on the Docker host.
import { describe, expect, test } from "vitest";
import { chooseRelease, parseArgs, parseReleases } from "../../scripts/rollback";

const A = `sha256:${"a".repeat(64)}`;
const B = `sha256:${"b".repeat(64)}`;
const C = `sha256:${"c".repeat(64)}`;
const LISTED = [
    `odin-release-20261201T030000Z ${A}`,
    `odin-release-20261202T030000Z ${B}`,
    `odin ${C}`,
    `odin-release-20261203T030000Z ${C}`,
    `dev-release-20261204T030000Z ${A}`,
    `odin-release-garbage ${A}`,
    "",
].join("\n");

describe("rollback's choice", () => {
    test("reads only the stack's release tags, newest first", () => {
        expect(parseReleases(LISTED, "odin").map((r) => r.tag)).toEqual([
            "odin-release-20261203T030000Z",
            "odin-release-20261202T030000Z",
            "odin-release-20261201T030000Z",
        ]);
    });

    test("goes one release back from the serving one, and one further after a rollback", () => {
        const releases = parseReleases(LISTED, "odin");
        expect(chooseRelease(releases, C).image).toBe(B);
        expect(chooseRelease(releases, B).image).toBe(A);
    });

    test("a version deployed twice counts from its newest release", () => {
        const releases = parseReleases(`${LISTED}\nodin-release-20261204T030000Z ${B}`, "odin");
        // B serves (redeployed after C): back is C, the release before B's newest one.
        expect(chooseRelease(releases, B).image).toBe(C);
    });

    test("refuses when nothing older is kept, naming what is", () => {
        expect(() => chooseRelease(parseReleases(LISTED, "odin"), A)).toThrow(
            /no release older than the serving one \(aaaaaaaaaaaa\) is kept; kept: odin-release-20261203T030000Z \(cccccccccccc\)/,
        );
        expect(() => chooseRelease([], A)).toThrow(/no release is kept on the Docker host/);
    });

    test("--to picks a release by tag or image ID, never the serving one", () => {
        const releases = parseReleases(LISTED, "odin");
        expect(chooseRelease(releases, C, "odin-release-20261201T030000Z").image).toBe(A);
        expect(chooseRelease(releases, C, "bbbbbbbbbbbb").image).toBe(B);
        expect(() => chooseRelease(releases, C, "odin-release-20261203T030000Z")).toThrow(/already serving/);
        expect(() => chooseRelease(releases, C, "nope")).toThrow(/no kept release nope; kept: /);
    });

    test("arguments: --stack, --to, --dry-run; anything else is refused", () => {
        expect(parseArgs(["--stack", "odin", "--to", "x", "--dry-run"], {})).toEqual({
            stack: "odin",
            to: "x",
            dryRun: true,
        });
        expect(parseArgs([], { PULUMI_STACK: "odin" }).stack).toBe("odin");
        expect(() => parseArgs(["odin"], {})).toThrow("unexpected argument odin");
    });
});
