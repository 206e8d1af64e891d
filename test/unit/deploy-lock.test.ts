// The deploy lock (issue 20, item 5), what it decides without an engine: its arguments, who a holder is,
// when a lock found on the engine is stale, and the exact words a second taker reads. The engine's side
// (the atomic create, the lease ending with its holder) is test/e2e/lock.test.ts.
import { describe, expect, it } from "vitest";
import {
    DEFAULT_LEASE_SECONDS,
    DEFAULT_TTL_SECONDS,
    heldMessage,
    holderOf,
    judge,
    lockLabels,
    parseArgs,
    parseDuration,
    staleMessage,
    whoAmI,
    type LockHolder,
    type ObservedLock,
} from "../../scripts/deployLock";
import { stackTarget } from "../../scripts/target";
import { containerNames, deployLockName } from "../../components/names";

const holder: LockHolder = {
    who: "alice@laptop",
    what: "up",
    pid: 4242,
    since: "2026-12-04T17:00:00.000Z",
    expires: "2026-12-04T18:00:00.000Z",
    leaseSeconds: 60,
};
const found = (over: Partial<ObservedLock>): ObservedLock => ({
    id: "abc123",
    status: "running",
    exitCode: 0,
    created: "2026-12-04T17:00:00.100Z",
    labels: lockLabels(holder),
    ...over,
});
const at = (iso: string) => new Date(iso);

describe("npm run lock: arguments", () => {
    it("reads status, release and run, the stack defaulting to PULUMI_STACK, then dev", () => {
        expect(parseArgs(["status"], {})).toMatchObject({ command: "status", stack: "dev", json: false });
        expect(parseArgs(["status", "--json"], { PULUMI_STACK: "odin" })).toMatchObject({ stack: "odin", json: true });
        expect(parseArgs(["release", "--stack", "odin"], {})).toMatchObject({ command: "release", stack: "odin" });
        expect(
            parseArgs(
                ["run", "--stack", "odin", "--what", "up", "--lock-wait", "5m", "--", "pulumi", "up", "--yes"],
                {},
            ),
        ).toMatchObject({
            command: "run",
            what: "up",
            waitSeconds: 300,
            ttlSeconds: DEFAULT_TTL_SECONDS,
            leaseSeconds: DEFAULT_LEASE_SECONDS,
            // Everything after -- is the command's, flags included.
            argv: ["pulumi", "up", "--yes"],
        });
    });

    it("refuses what it cannot do, naming the argument", () => {
        expect(() => parseArgs(["lock"], {})).toThrow("unknown command lock");
        expect(() => parseArgs(["run", "--", "true"], {})).toThrow("run needs --what, a command name such as up");
        expect(() => parseArgs(["run", "--what", "up"], {})).toThrow("run needs the command after --");
        expect(() => parseArgs(["status", "--lock-wait", "5"], {})).toThrow("unexpected argument --lock-wait");
        expect(() => parseArgs(["run", "--what", "up", "--lock-wait"], {})).toThrow("--lock-wait needs a value");
        expect(() => parseArgs(["release", "--stack", "../x"], {})).toThrow(
            'unknown stack "../x": the stacks are dev, odin (one per Pulumi.<name>.yaml file); choose one with --stack <name>',
        );
        expect(() => parseArgs(["run", "--what", "up", "--lease-seconds", "1", "--", "x"], {})).toThrow(
            "--lease-seconds must be at least 3",
        );
    });

    it("reads durations as seconds, or with s, m or h", () => {
        expect(parseDuration("--lock-wait", "90")).toBe(90);
        expect(parseDuration("--lock-wait", "90s")).toBe(90);
        expect(parseDuration("--lock-ttl", "45m")).toBe(2700);
        expect(parseDuration("--lock-ttl", "2h")).toBe(7200);
        expect(() => parseDuration("--lock-wait", "-1")).toThrow(
            "--lock-wait -1 is not a duration: write seconds (90) or 90s, 45m, 2h",
        );
        expect(() => parseDuration("--lock-ttl", "1d")).toThrow("--lock-ttl 1d is not a duration");
    });
});

describe("the deploy lock's holder", () => {
    it("is user@host on a laptop, and the actor with the run's address in GitHub Actions", () => {
        expect(whoAmI({}, "alice", "laptop")).toBe("alice@laptop");
        expect(
            whoAmI(
                {
                    GITHUB_ACTIONS: "true",
                    GITHUB_ACTOR: "octocat",
                    GITHUB_SERVER_URL: "https://github.com",
                    GITHUB_REPOSITORY: "me/marvel-rivals-stats",
                    GITHUB_RUN_ID: "99",
                },
                "runner",
                "odin",
            ),
        ).toBe("octocat@odin (GitHub Actions https://github.com/me/marvel-rivals-stats/actions/runs/99)");
    });

    it("travels in the container's labels and is read back from them", () => {
        expect(holderOf(lockLabels(holder))).toEqual(holder);
        expect(holderOf({ "com.example": "x" })).toBeUndefined();
    });
});

describe("the deploy lock's name", () => {
    it("is <containerPrefix>-deploy-lock, and none the program's host step frees or checks (the lock is held by the up that runs it)", () => {
        expect(stackTarget("odin").deployLock).toBe("marvel-rivals-deploy-lock");
        expect(deployLockName("mrs-second")).toBe("mrs-second-deploy-lock");
        // index.ts hands every ContainerNames value to the host step, which removes or refuses what it finds.
        expect(Object.values(containerNames("mrs-second"))).not.toContain("mrs-second-deploy-lock");
    });
});

describe("whether a lock found on the engine still holds", () => {
    it("holds while its container runs and its TTL has not passed", () => {
        expect(judge(found({}), at("2026-12-04T17:59:59Z"))).toEqual({ state: "held", holder });
    });

    it("is stale past its TTL, even running (a holder alive but stuck)", () => {
        expect(judge(found({}), at("2026-12-04T18:00:01Z"))).toEqual({
            state: "stale",
            holder,
            reason: "expired at 2026-12-04T18:00:00.000Z",
        });
    });

    it("is stale once its container has exited: the holder went away (EOF) or fell silent (exit 3)", () => {
        const now = at("2026-12-04T17:10:00Z");
        expect(judge(found({ status: "exited", finishedAt: "2026-12-04T17:05:00Z" }), now)).toMatchObject({
            state: "stale",
            reason: "its holder went away without releasing it at 2026-12-04T17:05:00Z",
        });
        expect(judge(found({ status: "exited", exitCode: 3, finishedAt: "2026-12-04T17:05:00Z" }), now)).toMatchObject({
            state: "stale",
            reason: "its holder fell silent (no heartbeat for 60 s) and its lease ended at 2026-12-04T17:05:00Z",
        });
    });

    it("holds while it is being started, and is stale when its taker died before starting it", () => {
        expect(judge(found({ status: "created" }), at("2026-12-04T17:00:30Z")).state).toBe("held");
        expect(judge(found({ status: "created" }), at("2026-12-04T17:02:00Z"))).toMatchObject({
            state: "stale",
            reason: "its holder never started it (created 2026-12-04T17:00:00.100Z)",
        });
    });

    it("is not a lock at all when the container under its name lacks the lock's label", () => {
        expect(judge(found({ labels: {} }), at("2026-12-04T17:00:30Z"))).toEqual({ state: "foreign" });
    });
});

describe("what a second taker reads", () => {
    const odin = stackTarget("odin");

    it("names the holder, the command and since when, and how to release a lock known to be stale", () => {
        expect(heldMessage(odin, holder, 0)).toBe(
            "the deploy lock of stack odin (marvel-rivals-deploy-lock on ssh://root@odin) is held by alice@laptop for `up` (pid 4242) since 2026-12-04T17:00:00.000Z (expires 2026-12-04T18:00:00.000Z): one change at a time. Try again when it is done, or wait for it with --lock-wait SECONDS; if you know that run is gone, release it: npm run lock -- release --stack odin",
        );
        expect(heldMessage(odin, holder, 30)).toContain(
            "(expires 2026-12-04T18:00:00.000Z), still after waiting 30 s:",
        );
    });

    it("reports a stale lock it removed, whose it was and why", () => {
        expect(staleMessage(odin, holder, "expired at 2026-12-04T18:00:00.000Z")).toBe(
            "lock: removed a stale deploy lock of stack odin held by alice@laptop for `up` (pid 4242) since 2026-12-04T17:00:00.000Z: expired at 2026-12-04T18:00:00.000Z",
        );
    });
});
