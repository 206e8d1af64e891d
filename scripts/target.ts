// Where a stack runs, as the scripts beside the Pulumi program see it (`npm run backups`, `npm run restore`,
// `npm run lock`): its engine, its container names and its Postgres image, read from its stack file, and
// one docker CLI call against that engine. Kept apart from backups.ts so that the deploy lock (which
// restore takes) and the backups can both import it without importing each other.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
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
export function eachArg(
    argv: string[],
    each: (arg: string, value: () => string) => void,
    env: NodeJS.ProcessEnv = process.env,
): void {
    npmAteFlags(argv, env);
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        each(arg, () => {
            const v = argv[++i];
            if (v === undefined || v.startsWith("--")) throw new UsageError(`${arg} needs a value`);
            return v;
        });
    }
}

/**
 * The flags of our scripts that npm takes for its own config when they come before `--`
 * (`npm run backups --stack odin`): npm then hands the script `odin` alone and sets `npm_config_stack`
 * (npm 11: `true`, or the value of `--stack=odin`). Each is refused with the command as it should be.
 */
const NPM_EATEN = ["stack", "follow", "json", "dry_run", "force", "lock_wait", "lock_ttl", "from", "yes", "tail"];

/** Refuses a command line whose flags npm ate (see NPM_EATEN), naming the command with `--` in place. */
export function npmAteFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): void {
    const eaten = NPM_EATEN.filter((k) => env[`npm_config_${k}`] !== undefined && env[`npm_config_${k}`] !== "");
    if (eaten.length === 0) return;
    const rest = [...argv];
    const flags = eaten.map((k) => {
        const flag = `--${k.replace(/_/g, "-")}`;
        const v = env[`npm_config_${k}`]!;
        if (v !== "true") return `${flag} ${v}`;
        // `--stack odin`: npm kept `odin` as an argument; the stack is the argument that names a stack file.
        if (k === "stack") {
            const i = rest.findIndex((a) => stackNames().includes(a));
            if (i >= 0) return `${flag} ${rest.splice(i, 1)[0]}`;
            return `${flag} <name>`;
        }
        return flag;
    });
    const script = env.npm_lifecycle_event ?? "<script>";
    throw new UsageError(
        `npm took ${eaten.map((k) => `--${k.replace(/_/g, "-")}`).join(", ")} for itself: put \`--\` before the flags: npm run ${script} -- ${[...rest, ...flags].join(" ")}`,
    );
}

/** The project's stacks: one per `Pulumi.<name>.yaml` file. */
export function stackNames(projectDir = PROJECT_DIR): string[] {
    return readdirSync(projectDir)
        .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
        .filter((n): n is string => n !== undefined)
        .sort();
}

/** `stack`, refused unless it names a stack file; the refusal lists the stacks there are. */
export function stackName(stack: string, projectDir = PROJECT_DIR): string {
    const known = stackNames(projectDir);
    if (!/^[A-Za-z0-9_.-]+$/.test(stack) || !known.includes(stack)) {
        throw new UsageError(
            `unknown stack ${JSON.stringify(stack)}: the stacks are ${known.join(", ")} (one per Pulumi.<name>.yaml file); choose one with --stack <name>`,
        );
    }
    return stack;
}

/** The words of an unknown stack's refusal (stackName's). */
function stackRefusal(stack: string, projectDir: string): string {
    try {
        stackName(stack, projectDir);
    } catch (err) {
        return (err as Error).message;
    }
    return `no stack file Pulumi.${stack}.yaml`;
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
    if (!existsSync(file)) throw new Refusal(stackRefusal(stack, projectDir));
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
/** The command that deploys `stack`, as hints name it (the wrapper, with the stack: scripts/pulumi.sh). */
export const upCommand = (stack: string) => `npm run up -- --stack ${stack}`;

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
    return collect("docker", args, host, env, timeoutMs);
}

/**
 * A bash script of docker CLI calls (a pipe from one container into another), as `docker` runs one call:
 * against `host`, in a process group of its own, `args` as its $1..., no time limit by default.
 */
export function dockerScript(
    host: string | undefined,
    script: string,
    args: string[] = [],
    env: Record<string, string> = {},
    timeoutMs = 0,
): Promise<{ code: number; stdout: string; stderr: string }> {
    return collect("bash", ["-c", script, "docker-script", ...args], host, env, timeoutMs);
}

function collect(
    command: string,
    args: string[],
    host: string | undefined,
    env: Record<string, string>,
    timeoutMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
        const child = spawn(command, args, {
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
 * One docker CLI call attached to this terminal (`docker logs --follow`, `docker exec -it ... psql`): its
 * output and input are the user's; its exit status is returned. Ctrl-C reaches both, as in a shell.
 */
export function dockerAttached(host: string | undefined, args: string[]): Promise<number> {
    return new Promise((resolve) => {
        const child = spawn("docker", args, {
            env: { ...process.env, ...(host ? { DOCKER_HOST: host } : {}) },
            stdio: "inherit",
        });
        // The child has the terminal's Ctrl-C too; this process waits for it to end.
        const ignore = () => undefined;
        process.on("SIGINT", ignore);
        child.on("error", (err) => {
            process.off("SIGINT", ignore);
            process.stderr.write(`the docker CLI could not run: ${err.message}; install Docker's CLI\n`);
            resolve(127);
        });
        child.on("close", (code, signal) => {
            process.off("SIGINT", ignore);
            resolve(signal ? 130 : (code ?? 1));
        });
    });
}

/** One value of a stack file's config (text), or undefined. */
export function stackConfigText(stack: string, key: string, projectDir = PROJECT_DIR): string | undefined {
    const file = path.join(projectDir, `Pulumi.${stack}.yaml`);
    const v = ((parseYaml(readFileSync(file, "utf8")) ?? {}).config ?? {})[`marvel-rivals-stats:${key}`];
    return v === undefined || v === null || v === "" ? undefined : String(v);
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

/**
 * A script's help: the usage lines of its header comment (`//   npm run name -- ...`, the one place they
 * are written) and how the stack is chosen. Printed before anything runs: no engine, no server needed.
 */
export function helpText(file: string): string {
    const header = readFileSync(file, "utf8").split("\n");
    const end = header.findIndex((l) => !l.startsWith("//"));
    const usage = header
        .slice(0, end < 0 ? header.length : end)
        .flatMap((l) => [...l.matchAll(/npm run [a-z:]+ -- [^`\n]*/g)].map((m) => m[0].trim()));
    return [
        `usage: ${usage.join("\n       ")}`,
        `--stack <name> chooses the stack (default dev; the stacks: ${stackNames().join(", ")}); the flags go after \`--\`.`,
    ].join("\n");
}

/** Whether the command line asks for help. */
export const wantsHelp = (argv: string[]) => argv.some((a) => a === "--help" || a === "-h");

/**
 * Runs `main` with the command line when `mod` is the program (`require.main`), and exits with its status.
 * `--help` (or `-h`) prints `helpText` of the script and exits 0 without running it.
 */
export function runAsProgram(mod: NodeModule, main: (argv: string[]) => Promise<number>): void {
    if (require.main !== mod) return;
    if (wantsHelp(process.argv.slice(2))) {
        process.stdout.write(`${helpText(mod.filename)}\n`);
        process.exit(0);
    }
    main(process.argv.slice(2)).then(
        (code) => process.exit(code),
        (err) => {
            process.stderr.write(`${(err as Error).stack ?? err}\n`);
            process.exit(1);
        },
    );
}
