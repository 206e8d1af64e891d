// `npm run rollback` (issue 20): the app back to the release deployed before the one serving, from an image
// kept on the Docker host, by a `pulumi up`: the state, the drift check and the next deploy then agree with
// what runs. Each deploy whose new version turned ready tags its image `<repository>:<stack>-release-<UTC
// time>` (components/app.ts, RECORD_RELEASE); a failed deploy tags nothing, so it never changes what
// "previous" means. The rollback pins the stack's `appImage` to that image and runs `up`: the kept version
// starts beside the serving one and takes traffic once ready (the same path as a deploy). It touches no
// data: the migration step keeps the built image, whose migrations are already applied. `npm run up`
// removes the pin and deploys the code again.
//
//   npm run rollback -- [--stack dev|odin] [--to <release tag or image ID>] [--dry-run]
//
// Exit status: 0 done (or nothing to do); 1 refused or failed (the message says why); 2 bad arguments.
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { APP_IMAGE_REPOSITORY, releaseTagPrefix } from "../components/names";
import { withDeployLock } from "./deployLock";
import {
    Refusal,
    UsageError,
    docker,
    eachArg,
    findApp,
    refusalExit,
    runAsProgram,
    stackName,
    stackTarget,
    upCommand,
    type StackTarget,
} from "./target";

const PROJECT_DIR = path.resolve(__dirname, "..");

/** One release tag on the host, and the image it names. */
export interface Release {
    tag: string;
    /** `YYYYMMDDTHHMMSSZ`: sorts in time order. */
    time: string;
    image: string;
}

export interface Options {
    stack: string;
    to?: string;
    dryRun: boolean;
}

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): Options {
    const opts: Options = { stack: env.PULUMI_STACK || "dev", dryRun: false };
    eachArg(
        argv,
        (arg, value) => {
            if (arg === "--stack") opts.stack = value();
            else if (arg === "--to") opts.to = value();
            else if (arg === "--dry-run") opts.dryRun = true;
            else throw new UsageError(`unexpected argument ${arg}`);
        },
        env,
    );
    stackName(opts.stack);
    return opts;
}

/** A stack's release tags, newest first, from `docker image ls --no-trunc --format '{{.Tag}} {{.ID}}'`. */
export function parseReleases(stdout: string, stack: string): Release[] {
    const prefix = `${releaseTagPrefix(stack)}-`;
    return stdout
        .split("\n")
        .map((l) => l.trim().split(/\s+/))
        .filter(([tag, id]) => tag?.startsWith(prefix) && /^\d{8}T\d{6}Z$/.test(tag.slice(prefix.length)) && id)
        .map(([tag, image]) => ({ tag, time: tag.slice(prefix.length), image }))
        .sort((a, b) => b.time.localeCompare(a.time));
}

/**
 * The release to go back to. With `to`: the release with that tag (or whose image ID starts with it). Else
 * the newest release of another image than the serving one, older than the serving image's newest release:
 * one step back from what serves (after a rollback, the one before that).
 */
export function chooseRelease(releases: Release[], serving: string, to?: string): Release {
    if (releases.length === 0)
        throw new Refusal(
            "no release is kept on the Docker host: a release is recorded by each deploy whose new version turned ready",
        );
    if (to) {
        const id = to.startsWith("sha256:") ? to : `sha256:${to}`;
        const found = releases.find((r) => r.tag === to || r.tag.endsWith(`:${to}`) || r.image.startsWith(id));
        if (!found)
            throw new Refusal(
                `no kept release ${to}; kept: ${releases.map((r) => `${r.tag} (${short(r.image)})`).join(", ")}`,
            );
        if (found.image === serving) throw new Refusal(`${to} is the release already serving (${short(serving)})`);
        return found;
    }
    const servingSince = releases.find((r) => r.image === serving)?.time;
    const previous = releases.find((r) => r.image !== serving && (!servingSince || r.time < servingSince));
    if (!previous)
        throw new Refusal(
            `no release older than the serving one (${short(serving)}) is kept; kept: ${releases.map((r) => `${r.tag} (${short(r.image)})`).join(", ")}`,
        );
    return previous;
}

const short = (image: string) => image.replace(/^sha256:/, "").slice(0, 12);
const describe = (plan: { app: string; serving: string; release: Release }) =>
    `${plan.app} serves ${short(plan.serving)}; back to ${plan.release.tag} (${short(plan.release.image)})`;

/** What a rollback of `stack` would do: the serving image and the release to go back to. */
export async function planRollback(
    t: StackTarget,
    to?: string,
): Promise<{ app: string; serving: string; release: Release }> {
    const app = await findApp(t);
    if (!app)
        throw new Refusal(`no app container of stack ${t.stack} on ${t.host ?? "the local engine"}: deploy first`);
    const inspected = await docker(t.host, ["inspect", "--format", "{{.Image}}", app]);
    if (inspected.code !== 0) throw new Refusal(`cannot inspect ${app}: ${inspected.stderr.trim()}`);
    const listed = await docker(t.host, [
        "image",
        "ls",
        "--no-trunc",
        "--format",
        "{{.Tag}} {{.ID}}",
        APP_IMAGE_REPOSITORY,
    ]);
    if (listed.code !== 0) throw new Refusal(`cannot list the kept releases: ${listed.stderr.trim()}`);
    const serving = inspected.stdout.trim();
    return { app, serving, release: chooseRelease(parseReleases(listed.stdout, t.stack), serving, to) };
}

/** `bash scripts/pulumi.sh <args>` for the stack, output passed through. */
function pulumi(stack: string, args: string[]): number {
    const r = spawnSync("bash", [path.join(PROJECT_DIR, "scripts", "pulumi.sh"), ...args], {
        cwd: PROJECT_DIR,
        // The lock is held by this process (MRS_DEPLOY_LOCK_HELD: pulumi.sh does not take it again); the
        // pin is kept (MRS_ROLLBACK: pulumi.sh's plain up would remove it).
        env: { ...process.env, PULUMI_STACK: stack, MRS_ROLLBACK: "1", MRS_DEPLOY_LOCK_HELD: "rollback" },
        stdio: "inherit",
    });
    return r.status ?? 1;
}

export async function main(argv: string[], out = (l: string) => process.stdout.write(`${l}\n`)): Promise<number> {
    let opts: Options;
    try {
        opts = parseArgs(argv);
    } catch (err) {
        process.stderr.write(
            `${(err as Error).message}\nusage: npm run rollback -- [--stack dev|odin] [--to <release tag or image ID>] [--dry-run]\n`,
        );
        return 2;
    }
    try {
        const t = stackTarget(opts.stack);
        if (opts.dryRun) {
            const plan = await planRollback(t, opts.to);
            out(`rollback: stack ${opts.stack}: ${describe(plan)} (dry run: nothing changed)`);
            return 0;
        }
        // The deploy lock from the choice to the end of the up: no deploy changes what serves in between.
        await withDeployLock(t, "rollback", async () => {
            const plan = await planRollback(t, opts.to);
            out(`rollback: stack ${opts.stack}: ${describe(plan)}`);
            // The pin is the stack's config: what the state records and the drift check compares with.
            if (pulumi(opts.stack, ["config", "set", "marvel-rivals-stats:appImage", plan.release.image]) !== 0)
                throw new Refusal("could not set appImage in the stack's config; nothing was changed");
            if (pulumi(opts.stack, ["up", "--yes", "--skip-preview"]) !== 0)
                throw new Refusal(
                    `the up with appImage ${short(plan.release.image)} failed (above); a version that did not turn ready was stopped and the serving one kept; \`${upCommand(opts.stack)}\` deploys the code again`,
                );
        });
        out(`rollback: done; \`${upCommand(opts.stack)}\` deploys the code again (it removes the pin)`);
        return 0;
    } catch (err) {
        return refusalExit("rollback", err);
    }
}

runAsProgram(module, main);
