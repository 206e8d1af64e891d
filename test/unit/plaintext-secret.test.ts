// A secret key set without `--secret` is plain text in the stack file. The CLI does not insist on `secure:`
// for keys Pulumi.yaml does not declare, so the program refuses it, before declaring any resource.
import { beforeAll, expect, test } from "vitest";

let error: Error | undefined;
const registered: string[] = [];

beforeAll(async () => {
    const pulumi = await import("@pulumi/pulumi");
    const { loadStackConfig, PROJECT_ROOT } = await import("../support/stackConfig");
    const { config, secretKeys } = loadStackConfig("odin", { marvelRivalsApiKey: "pasted-in-plain-text" });
    pulumi.runtime.setAllConfig(config, [...secretKeys]);
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                registered.push(args.name);
                return { id: args.name, state: args.inputs };
            },
            call: () => ({}),
        },
        "marvel-rivals-stats",
        "odin",
    );
    try {
        await import(`${PROJECT_ROOT}/index.ts`);
    } catch (err) {
        error = err as Error;
    }
});

test("a secret stored in plain text stops the run with the fix, without its value", () => {
    expect(error?.message).toContain(
        "`marvel-rivals-stats:marvelRivalsApiKey` (value hidden) is stored in plain text in the stack file: remove it with `pulumi config rm marvelRivalsApiKey` and set it again with `pulumi config set --secret marvelRivalsApiKey <value>`.",
    );
    expect(error?.message).not.toContain("pasted-in-plain-text");
    expect(registered).toEqual([]);
});
