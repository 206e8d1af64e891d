// The off-site copy wired into the program (issue 22, item 1): with backupOffsite set, the backup container
// gets the target and the retention in its environment and every secret as a file (uploads), secret in the
// state; without it, nothing of the kind. Runs index.ts under mocks over the real Pulumi.odin.yaml.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, test } from "vitest";

const dir = mkdtempSync(path.join(tmpdir(), "mrs-offsite-program-"));
const keyFile = path.join(dir, "k");
const made = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", keyFile, "-C", "test"]);
if (made.status !== 0) throw new Error(`ssh-keygen: ${made.stderr}`);
const KEY = readFileSync(keyFile, "utf8");
rmSync(dir, { recursive: true, force: true });
const PASSWORD = "a-long-offsite-password-0123456789";
const KNOWN = "nas.lan ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPzV4b0Nq5I4uJ6yq8rQ3y3Y7a2m6xq3oGk3Zl3b1X9a";

describe("the backup container with an off-site target", () => {
    test("gets the repository and retention as values, the password, key and known_hosts as secret files", async () => {
        const { runProgram } = await import("../../support/mockProgram");
        const run = await runProgram("odin", {
            backupOffsite: "sftp:backup@nas.lan:/srv/restic/mrs",
            backupOffsitePassword: PASSWORD,
            backupOffsiteSshKey: KEY,
            backupOffsiteKnownHosts: KNOWN,
            backupOffsiteKeep: "14/8/12",
        });
        const backup = run.byName("backups-container");
        const envs = backup.inputs.envs as string[];
        expect(envs).toEqual(
            expect.arrayContaining([
                "BACKUP_OFFSITE_REPOSITORY=sftp:backup@nas.lan:/srv/restic/mrs",
                "BACKUP_OFFSITE_KEEP=14/8/12",
                "BACKUP_OFFSITE_PASSWORD_FILE=/run/secrets/offsite/password",
                "BACKUP_OFFSITE_SSH_KEY_FILE=/run/secrets/offsite/ssh_key",
                "BACKUP_OFFSITE_KNOWN_HOSTS_FILE=/run/secrets/offsite/known_hosts",
            ]),
        );
        for (const secret of [PASSWORD, KEY.split("\n")[1]]) expect(JSON.stringify(envs)).not.toContain(secret);
        const uploads = Object.fromEntries(
            (backup.inputs.uploads as { file: string; content: string; permissions: string }[]).map((u) => [u.file, u]),
        );
        expect(Object.keys(uploads).sort()).toEqual([
            "/run/secrets/backup/pgpassword",
            "/run/secrets/offsite/known_hosts",
            "/run/secrets/offsite/password",
            "/run/secrets/offsite/ssh_key",
        ]);
        expect(uploads["/run/secrets/offsite/password"]).toEqual({
            file: "/run/secrets/offsite/password",
            content: PASSWORD,
            permissions: "0444",
        });
        expect(uploads["/run/secrets/offsite/ssh_key"].content).toBe(`${KEY.trim()}\n`);
        expect(uploads["/run/secrets/offsite/known_hosts"].content).toBe(`${KNOWN}\n`);
        // Secret in the state: the engine gets the uploads as a secret input.
        expect(backup.secretInputs).toContain("uploads");
        expect(JSON.stringify([backup.inputs.command, backup.inputs.entrypoints])).not.toContain(PASSWORD);
    });
});
