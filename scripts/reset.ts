// `npm run reset` (issue 25): dev from scratch. Destroys the dev stack (containers, network, generated
// passwords: `npm run destroy`, under the deploy lock) and moves its data directory aside, after you type
// the stack's name. Nothing is deleted: the old directory is kept beside the new one
// (`data-removed-<UTC stamp>`) until you remove it yourself. Refuses a stack on a server (odin): a
// server's data is never reset by a command.
//   npm run reset -- --stack dev
import { spawnSync } from "node:child_process";
import { existsSync, renameSync } from "node:fs";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { projectDefaults } from "../config";
import {
    PROJECT_DIR,
    Refusal,
    UsageError,
    eachArg,
    refusalExit,
    runAsProgram,
    stackConfigText,
    stackName,
} from "./target";

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): { stack: string } {
    let stack = env.PULUMI_STACK || "dev";
    eachArg(
        argv,
        (arg, value) => {
            if (arg === "--stack") stack = value();
            else throw new UsageError(`unexpected argument ${arg}`);
        },
        env,
    );
    stackName(stack);
    return { stack };
}

/** The stack's data directory on this machine; refused for a stack on another engine. */
export function localDataDir(stack: string, projectDir = PROJECT_DIR): string {
    const host = stackConfigText(stack, "dockerHost", projectDir);
    if (stack !== "dev" || (host !== undefined && !host.startsWith("unix://")))
        throw new Refusal(
            `only the dev stack on this machine is reset; stack ${stack}${host ? ` (on ${host})` : ""} keeps its data (to go back to a backup there: npm run restore -- --stack ${stack})`,
        );
    const dir = stackConfigText(stack, "dataDir", projectDir) ?? projectDefaults(projectDir).dataDir ?? "./data";
    return path.resolve(projectDir, dir);
}

/** Where the data directory goes: beside it, named by the time. */
export const asideName = (dir: string, now: Date) =>
    `${dir}-removed-${now.toISOString().replace(/[-:]/g, "").replace(/\..*$/, "Z")}`;

export interface Deps {
    projectDir: string;
    /** Runs `npm run destroy -- --yes` for the stack; its exit status. */
    destroy: (stack: string) => number;
    /** One line the user types. */
    ask: (question: string) => Promise<string>;
    now: () => Date;
    out: (line: string) => void;
}

const defaults: Deps = {
    projectDir: PROJECT_DIR,
    destroy: (stack) =>
        spawnSync("bash", [path.join(PROJECT_DIR, "scripts", "pulumi.sh"), "destroy", "--yes", "--stack", stack], {
            cwd: PROJECT_DIR,
            stdio: "inherit",
        }).status ?? 1,
    ask: (question) =>
        new Promise((resolve) => {
            process.stdout.write(question);
            const rl = createInterface({ input: process.stdin });
            rl.once("line", (answer) => {
                resolve(answer); // before close(), which emits "close" at once
                rl.close();
            });
            rl.once("close", () => resolve(""));
        }),
    now: () => new Date(),
    out: (l) => process.stdout.write(`${l}\n`),
};

export async function main(argv: string[], deps: Partial<Deps> = {}): Promise<number> {
    const d = { ...defaults, ...deps };
    let stack: string;
    try {
        ({ stack } = parseArgs(argv));
    } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        process.stderr.write(`${err.message}\nusage: npm run reset -- --stack dev\n`);
        return 2;
    }
    try {
        const dir = localDataDir(stack, d.projectDir);
        const aside = asideName(dir, d.now());
        d.out(
            `reset: destroys stack ${stack} (its containers, network and generated passwords) and moves its data directory ${dir} (database, Redis, backups) aside to ${aside}.`,
        );
        const answer = (await d.ask(`Type the stack's name (${stack}) to go on: `)).trim();
        if (answer !== stack)
            throw new Refusal(`you typed ${JSON.stringify(answer)}, not ${stack}: nothing was changed`);
        if (d.destroy(stack) !== 0)
            throw new Refusal(`the destroy failed (above): the data directory ${dir} was not touched`);
        if (existsSync(dir)) {
            renameSync(dir, aside);
            d.out(`reset: the data is in ${aside} until you delete it (its postgres/ belongs to the container's user)`);
        } else d.out(`reset: there was no data directory ${dir}`);
        d.out(`reset: done; npm run up -- --stack ${stack} starts from an empty database`);
        return 0;
    } catch (err) {
        return refusalExit("reset", err);
    }
}

runAsProgram(module, main);
