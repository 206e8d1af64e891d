// Where a stack runs, as the scripts beside the Pulumi program see it (`npm run backups`, `npm run restore`,
// `npm run lock`): its engine, its container names and its Postgres image, read from its stack file, and
// one docker CLI call against that engine. Kept apart from backups.ts so that the deploy lock (which
// restore takes) and the backups can both import it without importing each other.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { projectDefaults } from "../config";
import { STACK_LABEL } from "../components/hostDirectories";
import { APP_ROLE, ROLE_LABEL, containerNames, deployLockName, type ContainerNames } from "../components/names";

export const PROJECT_DIR = path.resolve(__dirname, "..");

/** A refusal: the message says why and what to do; the scripts print it and exit 1. */
export class Refusal extends Error {}

/** Bad arguments: the scripts print the message with their usage and exit 2. */
export class UsageError extends Error {}

/**
 * Walks a script's arguments: `each(arg, value)` for every one, where `value()` takes the next argument as
 * that option's value (refused when it is missing or is itself an option).
 */
export function eachArg(argv: string[], each: (arg: string, value: () => string) => void): void {
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        each(arg, () => {
            const v = argv[++i];
            if (v === undefined || v.startsWith("--")) throw new UsageError(`${arg} needs a value`);
            return v;
        });
    }
}

/** `stack`, refused unless it can name a stack file. */
export function stackName(stack: string): string {
    if (!/^[A-Za-z0-9_.-]+$/.test(stack)) throw new UsageError(`--stack ${stack} is not a stack name`);
    return stack;
}

/** Where a stack runs: its engine and its container names. */
export interface StackTarget {
    stack: string;
    /** The stack file's dockerHost; undefined: the docker CLI's own (DOCKER_HOST, its context). */
    host: string | undefined;
    names: ContainerNames;
    /** The name of the stack's deploy lock on its engine. */
    deployLock: string;
    /** The stack's Postgres image (stack file, else Pulumi.yaml's default): on every engine the stack runs on. */
    postgresImage: string;
    /** The database and its owner role (stack file, else Pulumi.yaml's defaults). */
    dbName: string;
    dbUser: string;
}

/** A stack's engine, container names and Postgres image, from its stack file (and Pulumi.yaml's defaults). */
export function stackTarget(stack: string, projectDir = PROJECT_DIR): StackTarget {
    const file = path.join(projectDir, `Pulumi.${stack}.yaml`);
    if (!existsSync(file)) throw new Refusal(`no stack file Pulumi.${stack}.yaml: --stack must be dev or odin`);
    const config = (parseYaml(readFileSync(file, "utf8")) ?? {}).config ?? {};
    const text = (key: string) => {
        const v = config[`marvel-rivals-stats:${key}`];
        return typeof v === "string" && v !== "" ? v : undefined;
    };
    return {
        stack,
        host: text("dockerHost"),
        names: containerNames(text("containerPrefix")),
        deployLock: deployLockName(text("containerPrefix")),
        postgresImage: text("postgresImage") ?? projectDefaults(projectDir).postgresImage,
        dbName: text("dbName") ?? projectDefaults(projectDir).dbName,
        dbUser: text("dbUser") ?? projectDefaults(projectDir).dbUser,
    };
}

/** The engine as a person reads it in a message. */
export const engineName = (t: StackTarget) => t.host ?? "the local engine";

/**
 * One docker CLI call. `timeoutMs` 0: no limit. The client runs in a process group of its own (detached),
 * so a Ctrl-C at the terminal reaches this script only: a `docker exec` client that gets it may exit 0
 * while the agent goes on (docker CLI 28), and its exit code would then say nothing. Code -1: the client
 * was killed by a signal.
 */
export function docker(
    host: string | undefined,
    args: string[],
    timeoutMs = 120_000,
    /** Extra variables for the client (a password for `docker exec -e NAME`, never an argument). */
    env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
        const child = spawn("docker", args, {
            env: { ...process.env, ...env, ...(host ? { DOCKER_HOST: host } : {}) },
            detached: true,
            stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
        child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
        const timer = timeoutMs > 0 ? setTimeout(() => child.kill("SIGTERM"), timeoutMs) : undefined;
        child.on("error", (err) => {
            clearTimeout(timer);
            resolve({ code: 127, stdout, stderr: err.message });
        });
        child.on("close", (code, signal) => {
            clearTimeout(timer);
            resolve({ code: signal ? -1 : (code ?? -1), stdout, stderr });
        });
    });
}

/**
 * The serving app container of a stack, found by its labels (role app, the stack's name) and its name
 * (`<prefix>-app`, or a version's `<prefix>-app-<hex>`: components/app.ts): the running one, the newest
 * first while a deploy runs two; else the newest stopped one; undefined when there is none.
 */
export async function findApp(t: StackTarget): Promise<string | undefined> {
    const r = await docker(t.host, [
        "ps",
        "-a",
        "--filter",
        `label=${STACK_LABEL}=${t.stack}`,
        "--filter",
        `label=${ROLE_LABEL}=${APP_ROLE}`,
        "--format",
        "{{.Names}}\t{{.State}}",
    ]);
    if (r.code !== 0) throw new Refusal(`cannot list the containers on ${engineName(t)}: ${r.stderr.trim()}`);
    const mine = new RegExp(`^${t.names.app.replace(/[.]/g, "\\.")}(-[0-9a-f]+)?$`);
    const found = r.stdout
        .split("\n")
        .map((l) => l.split("\t"))
        .filter(([name]) => name && mine.test(name));
    return (found.find(([, state]) => state === "running") ?? found[0])?.[0];
}

/**
 * What a script's `main` returns for an error: a `Refusal` is one line on stderr, `<who>: <message>`, and
 * exit status 1; anything else is a bug and is thrown on, with its stack trace.
 */
export function refusalExit(who: string, err: unknown): number {
    if (!(err instanceof Refusal)) throw err;
    process.stderr.write(`${who}: ${err.message}\n`);
    return 1;
}

/** Runs `main` with the command line when `mod` is the program (`require.main`), and exits with its status. */
export function runAsProgram(mod: NodeModule, main: (argv: string[]) => Promise<number>): void {
    if (require.main !== mod) return;
    main(process.argv.slice(2)).then(
        (code) => process.exit(code),
        (err) => {
            process.stderr.write(`${(err as Error).stack ?? err}\n`);
            process.exit(1);
        },
    );
}
