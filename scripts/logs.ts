// `npm run logs` (issue 25): a service's log, from the stack's engine (for odin the stack file's dockerHost,
// ssh://, through your ~/.ssh/config). The app is found by its labels (behind Caddy each version has a
// name of its own); the others by their names.
//   npm run logs -- [app|postgres|redis|backup|pgadmin] [--follow] [--tail N] [--stack dev|odin]
import {
    Refusal,
    UsageError,
    dockerAttached,
    eachArg,
    engineName,
    findApp,
    refusalExit,
    runAsProgram,
    stackName,
    stackTarget,
    type StackTarget,
} from "./target";

export const SERVICES = ["app", "postgres", "redis", "backup", "pgadmin"] as const;
export type Service = (typeof SERVICES)[number];

export interface Options {
    stack: string;
    service: Service;
    follow: boolean;
    tail: string;
}

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): Options {
    const opts: Options = { stack: env.PULUMI_STACK || "dev", service: "app", follow: false, tail: "200" };
    let named = false;
    eachArg(
        argv,
        (arg, value) => {
            if (arg === "--stack") opts.stack = value();
            else if (arg === "--follow" || arg === "-f") opts.follow = true;
            else if (arg === "--tail") {
                opts.tail = value();
                if (!/^(\d+|all)$/.test(opts.tail))
                    throw new UsageError(`--tail ${opts.tail}: a number of lines, or all`);
            } else if (!arg.startsWith("-") && !named && (SERVICES as readonly string[]).includes(arg)) {
                opts.service = arg as Service;
                named = true;
            } else if (!arg.startsWith("-"))
                throw new UsageError(`unknown service ${JSON.stringify(arg)}: one of ${SERVICES.join(", ")}`);
            else throw new UsageError(`unexpected argument ${arg}`);
        },
        env,
    );
    stackName(opts.stack);
    return opts;
}

/** The container of `service` on the stack's engine. */
export async function containerOf(t: StackTarget, service: Service): Promise<string> {
    if (service !== "app") return t.names[service];
    const app = await findApp(t);
    if (!app) throw new Refusal(`no app container of stack ${t.stack} on ${engineName(t)}: deploy first`);
    return app;
}

export async function main(argv: string[]): Promise<number> {
    let opts: Options;
    try {
        opts = parseArgs(argv);
    } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        process.stderr.write(
            `${err.message}\nusage: npm run logs -- [app|postgres|redis|backup|pgadmin] [--follow] [--tail N] [--stack dev|odin]\n`,
        );
        return 2;
    }
    try {
        const t = stackTarget(opts.stack);
        const name = await containerOf(t, opts.service);
        const code = await dockerAttached(t.host, [
            "logs",
            "--tail",
            opts.tail,
            ...(opts.follow ? ["--follow"] : []),
            name,
        ]);
        return code === 130 ? 0 : code;
    } catch (err) {
        return refusalExit("logs", err);
    }
}

runAsProgram(module, main);
