// `npm run psql` (issue 25): a psql session in the stack's database, run inside its Postgres container
// (`docker exec` over the stack's engine: for odin the stack file's dockerHost, ssh://, through your
// ~/.ssh/config), as the database's owner role through the container's local socket: no port, no password
// on this machine. Interactive (-it) when this is a terminal; otherwise SQL comes from stdin
// (`npm run -s psql < query.sql`). Arguments after the options go to psql (`-c 'SELECT 1'`).
//   npm run psql -- [--stack dev|odin] [psql's own arguments, e.g. -c 'SELECT count(*) FROM players']
import {
    Refusal,
    UsageError,
    docker,
    dockerAttached,
    engineName,
    npmAteFlags,
    refusalExit,
    runAsProgram,
    stackName,
    stackTarget,
} from "./target";

export interface Options {
    stack: string;
    psqlArgs: string[];
}

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): Options {
    npmAteFlags(argv, env);
    const opts: Options = { stack: env.PULUMI_STACK || "dev", psqlArgs: [] };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i]!;
        if (arg === "--stack") {
            const v = argv[++i];
            if (v === undefined || v.startsWith("-")) throw new UsageError("--stack needs a value");
            opts.stack = v;
        } else if (arg.startsWith("--stack=")) opts.stack = arg.slice("--stack=".length);
        else opts.psqlArgs.push(arg);
    }
    stackName(opts.stack);
    return opts;
}

/** The `docker exec` arguments: -it on a terminal, -i otherwise (SQL from stdin). */
export function execArgs(container: string, user: string, db: string, psqlArgs: string[], tty: boolean): string[] {
    return ["exec", tty ? "-it" : "-i", container, "psql", "-U", user, "-d", db, ...psqlArgs];
}

export async function main(argv: string[]): Promise<number> {
    let opts: Options;
    try {
        opts = parseArgs(argv);
    } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        process.stderr.write(`${err.message}\nusage: npm run psql -- [--stack dev|odin] [psql's own arguments]\n`);
        return 2;
    }
    try {
        const t = stackTarget(opts.stack);
        const r = await docker(t.host, ["inspect", "--format", "{{.State.Running}}", t.names.postgres]);
        if (r.code !== 0 || r.stdout.trim() !== "true")
            throw new Refusal(
                `the Postgres container ${t.names.postgres} is not running on ${engineName(t)}: npm run status -- --stack ${t.stack}`,
            );
        const tty = Boolean(process.stdin.isTTY && process.stdout.isTTY);
        return await dockerAttached(t.host, execArgs(t.names.postgres, t.dbUser, t.dbName, opts.psqlArgs, tty));
    } catch (err) {
        return refusalExit("psql", err);
    }
}

runAsProgram(module, main);
