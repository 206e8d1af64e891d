// The off-site copy (issue 22, item 1) against a real second machine: Debian's sshd on 127.0.0.1 with a
// user of its own, and real restic. What a stolen copy of the target holds must reveal nothing; the target
// alone must give the dump back byte for byte; the tiered retention applies there; damage is found.
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
    listOffsite,
    OFFSITE_ENV,
    offsiteFromEnv,
    OffsiteError,
    pruneOffsite,
    pushOffsite,
    restoreOffsite,
    syncOffsite,
    verifyOffsite,
    type OffsiteTarget,
} from "../../agent/offsite";
import { startSftpTarget, type SftpTarget } from "./support/sftpTarget";

let sftp: SftpTarget;
let work: string;
const PASSWORD = "correct-horse-battery-staple-offsite-0123";
// A row value that appears in the dump in plain text (the check below proves it does).
const ROW_VALUE = "Jeff-the-Land-Shark-unique-row-7f3a9c";

beforeAll(async () => {
    sftp = await startSftpTarget();
    work = mkdtempSync(path.join(tmpdir(), "mrs-offsite-test-"));
    writeFileSync(path.join(work, "password"), `${PASSWORD}\n`, { mode: 0o600 });
});
afterAll(async () => {
    await sftp?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
});

function target(repo: string, overrides: Partial<OffsiteTarget> = {}): OffsiteTarget {
    return {
        repository: repo,
        passwordFile: path.join(work, "password"),
        sshKeyFile: sftp.keyFile,
        knownHostsFile: sftp.knownHostsFile,
        ...overrides,
    };
}

function filesUnder(dir: string): string[] {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => path.join(e.parentPath, e.name));
}

const sha256 = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");

/** A dump and its record, as the agent writes them, in a directory of their own. */
function makeDump(name: string): { dump: string; record: string } {
    const dir = mkdtempSync(path.join(work, "local-"));
    const dump = path.join(dir, name);
    const rows = Array.from({ length: 2000 }, (_, i) => `${i}\t${ROW_VALUE}\t${i * 7}`).join("\n");
    writeFileSync(dump, `PGDMP-ish header\n${rows}\n`, { mode: 0o600 });
    const record = `${dump}.json`;
    writeFileSync(record, JSON.stringify({ file: name, status: "passed", sha256: sha256(dump) }), { mode: 0o600 });
    return { dump, record };
}

describe("an SFTP target", () => {
    test("a pushed dump is encrypted there, and the target alone gives it back byte for byte", async () => {
        const t = target(`${sftp.repository}-a`);
        const { dump, record } = makeDump("mrs-20260105T030000Z.dump");
        expect(readFileSync(dump, "utf8")).toContain(ROW_VALUE);
        const wanted = { dump: sha256(dump), record: sha256(record) };

        const id = await pushOffsite(t, [dump, record], ["kind=scheduled"]);
        expect(id).toMatch(/^[0-9a-f]{8,64}$/);

        // A thief's copy: every file of the repository on the target.
        const stored = filesUnder(`${sftp.repoDir}-a`);
        expect(stored.length).toBeGreaterThan(3);
        for (const f of stored) {
            const bytes = readFileSync(f);
            expect(bytes.includes(ROW_VALUE), `${f} holds the row value in plain text`).toBe(false);
            expect(bytes.includes(PASSWORD), `${f} holds the password`).toBe(false);
            expect(bytes.includes("mrs-20260105T030000Z"), `${f} names the dump in plain text`).toBe(false);
        }

        // The local copies are gone (the dead server): restore from the target alone into a new directory.
        rmSync(path.dirname(dump), { recursive: true, force: true });
        const into = mkdtempSync(path.join(work, "restored-"));
        const restored = await restoreOffsite(t, "mrs-20260105T030000Z.dump", into);
        expect(restored.map((f) => path.basename(f)).sort()).toEqual([
            "mrs-20260105T030000Z.dump",
            "mrs-20260105T030000Z.dump.json",
        ]);
        expect(sha256(path.join(into, "mrs-20260105T030000Z.dump"))).toBe(wanted.dump);
        expect(sha256(path.join(into, "mrs-20260105T030000Z.dump.json"))).toBe(wanted.record);
        const listed = await listOffsite(t);
        expect(listed).toHaveLength(1);
        expect(listed[0].tags).toEqual(expect.arrayContaining(["dump=mrs-20260105T030000Z.dump", "kind=scheduled"]));
    });

    test("a target whose host key is not the pinned one is refused in one line naming the fix", async () => {
        const { dump, record } = makeDump("mrs-20260106T030000Z.dump");
        const err = await pushOffsite(target(`${sftp.repository}-b`, { knownHostsFile: sftp.wrongKnownHostsFile }), [
            dump,
            record,
        ]).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(OffsiteError);
        expect((err as Error).message).toBe(
            `off-site target ${sftp.repository}-b: its SSH host key is not the one in backupOffsiteKnownHosts; add the target's key (\`ssh-keyscan -p PORT HOST\`, checked against the target's own /etc/ssh/*.pub) with \`pulumi config set backupOffsiteKnownHosts\``,
        );
        // Nothing was written there.
        expect(() => statSync(`${sftp.repoDir}-b`)).toThrow();
    });

    test("a wrong password does not open the repository, and the error says which key to fix", async () => {
        const t = target(`${sftp.repository}-c`);
        const { dump, record } = makeDump("mrs-20260107T030000Z.dump");
        await pushOffsite(t, [dump, record]);
        writeFileSync(path.join(work, "wrong"), "not-the-password-at-all-000000\n", { mode: 0o600 });
        const err = await listOffsite({ ...t, passwordFile: path.join(work, "wrong") }).catch((e: unknown) => e);
        expect((err as Error).message).toBe(
            `off-site target ${sftp.repository}-c: the password does not open the repository; set backupOffsitePassword to the one the repository was created with (from your password manager)`,
        );
    });

    test("pruning keeps the newest of each of the last days, weeks and months, and frees the rest", async () => {
        const t = target(`${sftp.repository}-d`);
        // One nightly dump at 03:00 UTC from 2026-01-20 to 2026-02-09 (a Monday), 21 in all.
        const days: string[] = [];
        for (let d = new Date("2026-01-20T03:00:00Z"); d <= new Date("2026-02-09T03:00:00Z");) {
            days.push(d.toISOString().slice(0, 10));
            d = new Date(d.getTime() + 86_400_000);
        }
        for (const day of days) {
            const { dump, record } = makeDump(`mrs-${day.replaceAll("-", "")}T030000Z.dump`);
            await pushOffsite(t, [dump, record], ["kind=scheduled"], { time: new Date(`${day}T03:00:00Z`) });
        }
        const sizeBefore = filesUnder(`${sftp.repoDir}-d`).length;
        const { kept, removed } = await pruneOffsite(t, { daily: 3, weekly: 3, monthly: 2 });
        // daily 3: Feb 9, 8, 7. weekly 3 (ISO weeks): Feb 9 (week 7), Feb 8 (week 6), Feb 1 (week 5, Sunday).
        // monthly 2: Feb 9, Jan 31.
        const keptDays = (await listOffsite(t)).map((s) => s.time.slice(0, 10));
        expect(keptDays).toEqual(["2026-01-31", "2026-02-01", "2026-02-07", "2026-02-08", "2026-02-09"]);
        expect(kept).toHaveLength(5);
        expect(removed).toHaveLength(16);
        // Their data is gone from the target, not just their names.
        expect(filesUnder(`${sftp.repoDir}-d`).length).toBeLessThan(sizeBefore);
        await verifyOffsite(t);
    }, 300_000);

    test("the agent's environment (paths only) drives a push and the retention in one call", async () => {
        writeFileSync(path.join(work, "ssh_key"), sftp.keyText, { mode: 0o444 });
        writeFileSync(path.join(work, "known_hosts"), sftp.knownHostsText, { mode: 0o444 });
        const env = {
            [OFFSITE_ENV.repository]: `${sftp.repository}-f`,
            [OFFSITE_ENV.keep]: "1/0/0",
            [OFFSITE_ENV.passwordFile]: path.join(work, "password"),
            [OFFSITE_ENV.sshKeyFile]: path.join(work, "ssh_key"),
            [OFFSITE_ENV.knownHostsFile]: path.join(work, "known_hosts"),
        };
        const off = offsiteFromEnv(env)!;
        const first = makeDump("mrs-20260109T030000Z.dump");
        await pushOffsite(off.target, [first.dump, first.record], [], { time: new Date("2026-01-09T03:00:00Z") });
        const second = makeDump("mrs-20260110T030000Z.dump");
        const result = await syncOffsite(off.target, off.policy, [second.dump, second.record], ["kind=scheduled"]);
        expect(result).toMatchObject({ kept: 1, removed: 1 });
        expect(result.line).toMatch(
            /^off-site: mrs-20260110T030000Z\.dump pushed to .+-f \(snapshot [0-9a-f]{8}\); 1 kept there, 1 pruned \(keep 1\/0\/0\)$/,
        );
        expect((await listOffsite(off.target)).map((s) => s.files[0])).toEqual(["mrs-20260110T030000Z.dump"]);
    }, 120_000);

    test("a flipped byte in a pack file on the target is caught by verify", async () => {
        const t = target(`${sftp.repository}-e`);
        const { dump, record } = makeDump("mrs-20260108T030000Z.dump");
        await pushOffsite(t, [dump, record]);
        await verifyOffsite(t);
        const packs = filesUnder(path.join(`${sftp.repoDir}-e`, "data"))
            .map((f) => ({ f, size: statSync(f).size }))
            .sort((a, b) => b.size - a.size);
        expect(packs.length).toBeGreaterThan(0);
        const pack = packs[0].f;
        const bytes = readFileSync(pack);
        const at = Math.floor(bytes.length / 2);
        bytes[at] = bytes[at] ^ 0xff;
        writeFileSync(pack, bytes);
        const err = await verifyOffsite(t).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(OffsiteError);
        expect((err as Error).message).toMatch(
            new RegExp(
                `^off-site target ${sftp.repository.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}-e: restic check --read-data found damaged data \\(.+\\); the copies there cannot be trusted`,
            ),
        );
        expect((err as Error).message).not.toContain("\n");
    }, 120_000);
});
