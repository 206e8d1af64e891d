// The migration CLI has no stack (it works on DATABASE_URL): `npm run -s migrate -- status --stack dev`
// printed Node's raw parseArgs error, `npm run migrate --stack odin` (npm takes the flag) 'unknown command
// "odin"'. Both now get one line that says where a stack's pending migrations are. And `create` refuses
// a name already used (two files of one name were made before).
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, expect, test } from "vitest";
import { main } from "../../app/src/cli/migrate";

async function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
    let stdout = "";
    let stderr = "";
    const sink = (add: (s: string) => void) =>
        new Writable({
            write(chunk: Buffer, _enc, done) {
                add(chunk.toString());
                done();
            },
        });
    const code = await main(
        argv,
        sink((s) => (stdout += s)),
        sink((s) => (stderr += s)),
        env,
    );
    return { code, stdout, stderr };
}

const refusal = (stack: string) =>
    `migrate: migrate has no --stack: it works on the database of DATABASE_URL; a stack's pending migrations: npm run status -- --stack ${stack}\n`;

describe("migrate --stack", () => {
    test("after `--`: one line naming npm run status with that stack, exit 2, before any database", async () => {
        for (const argv of [
            ["status", "--stack", "dev"],
            ["--stack=odin", "status"],
        ]) {
            const r = await run(argv);
            expect(r).toEqual({
                code: 2,
                stdout: "",
                stderr: refusal(argv.join(" ").includes("odin") ? "odin" : "dev"),
            });
        }
    });

    test("taken by npm (npm run migrate --stack odin): the stack name that reached us as an argument", async () => {
        expect(await run(["odin"], { npm_config_stack: "true" })).toEqual({
            code: 2,
            stdout: "",
            stderr: refusal("odin"),
        });
        expect(await run(["status"], { npm_config_stack: "true" })).toEqual({
            code: 2,
            stdout: "",
            stderr: refusal("<name>"),
        });
    });

    test("with --json, the one JSON document too", async () => {
        const r = await run(["status", "--json", "--stack", "odin"]);
        expect(r.code).toBe(2);
        expect(JSON.parse(r.stdout)).toEqual({ command: "", error: { message: refusal("odin").slice(9, -1) } });
    });
});

test("create refuses a name already used, naming its file; nothing is written", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mrs-migrate-create-"));
    try {
        expect((await run(["create", "add_region", "--migrations-dir", dir])).code).toBe(0);
        const again = await run(["create", "add_region", "--migrations-dir", dir]);
        expect(again).toEqual({
            code: 1,
            stdout: "",
            stderr: 'migrate create: a migration named "add_region" exists already (001_add_region.sql): choose another name, e.g. add_region_2\n',
        });
        expect(readdirSync(dir).sort()).toEqual(["001_add_region.down.sql", "001_add_region.sql"]);
        expect((await run(["create", "add_region_2", "--migrations-dir", dir])).code).toBe(0);
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
});
