// A secret key set without `--secret` is plain text in the stack file. The CLI does not insist on `secure:`
// for keys Pulumi.yaml does not declare, so the program refuses it, before declaring any resource.
import { beforeAll, expect, test } from "vitest";

let error: Error | undefined;
let registered: string[] = [];

beforeAll(async () => {
    const { runRefusedProgram } = await import("../../support/mockProgram");
    ({ error, registered } = await runRefusedProgram("odin", { marvelRivalsApiKey: "pasted-in-plain-text" }));
});

test("a secret stored in plain text stops the run with the fix, without its value", () => {
    expect(error?.message).toContain(
        "`marvel-rivals-stats:marvelRivalsApiKey` (value hidden) is stored in plain text in the stack file: remove it with `npm run config -- rm marvelRivalsApiKey --stack odin` and set it again with `npm run config -- set --secret marvelRivalsApiKey <value> --stack odin`.",
    );
    expect(error?.message).not.toContain("pasted-in-plain-text");
    expect(registered).toEqual([]);
});
