// The off-site copy's stack keys (issue 22, item 1) and what the backup container gets from them. config.ts
// is pure; offsiteContainerInputs builds Outputs, read here through the SDK's own promise.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { afterAll, describe, expect, test } from "vitest";
import { ConfigError, parseStackConfig, projectDefaults, type ParseContext } from "../../config";
import { offsiteContainerInputs, OFFSITE_SECRETS_DIR } from "../../components/offsite";
import { offsiteFromEnv } from "../../agent/offsite";
import { PROJECT_ROOT, loadStackConfig } from "../../support/stackConfig";

const ctx: ParseContext = {
    projectDir: "/home/dev/marvel-rivals-stats",
    defaultOwner: "1000:1000",
    defaults: projectDefaults(PROJECT_ROOT),
    env: {},
};
const P = "marvel-rivals-stats";
const SECRETS = ["backupOffsitePassword", "backupOffsiteSshKey", "backupOffsiteS3Credentials"];

const keys = mkdtempSync(path.join(tmpdir(), "mrs-offsite-keys-"));
afterAll(() => rmSync(keys, { recursive: true, force: true }));
function sshKey(passphrase: string): string {
    const f = path.join(keys, `k${passphrase.length}`);
    const r = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-f", f, "-C", "test"]);
    if (r.status !== 0) throw new Error(`ssh-keygen: ${r.stderr}`);
    return readFileSync(f, "utf8");
}
const KEY = sshKey("");
const PASSWORD = "a-long-offsite-password-0123456789";
const SFTP = {
    backupOffsite: "sftp:backup@nas.lan:/srv/restic/marvel-rivals-stats",
    backupOffsitePassword: PASSWORD,
    backupOffsiteSshKey: KEY,
    backupOffsiteKnownHosts: "nas.lan ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPzV4b0Nq5I4uJ6yq8rQ3y3Y7a2m6xq3oGk3Zl3b1X9a",
};

/** The odin stack with these keys set; secrets set as secrets unless listed in `plain`. */
function parse(overrides: Record<string, string | undefined>, plain: string[] = []) {
    const secret = Object.keys(overrides).filter((k) => SECRETS.includes(k) && !plain.includes(k));
    const { config, secretKeys } = loadStackConfig("odin", overrides, { secretOverrides: secret });
    return parseStackConfig((key) => config[`${P}:${key}`], {
        ...ctx,
        setKeys: Object.keys(config).map((k) => k.split(":")[1]),
        isSecret: (key) => secretKeys.includes(`${P}:${key}`),
    });
}
function problems(overrides: Record<string, string | undefined>, plain: string[] = []): string[] {
    try {
        parse(overrides, plain);
    } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        for (const s of [PASSWORD, KEY.split("\n")[1]]) expect((err as Error).message).not.toContain(s);
        return (err as ConfigError).problems;
    }
    throw new Error("expected the config to be refused");
}

describe("stack keys of the off-site copy", () => {
    test("the committed stacks have none", () => {
        expect(parse({}).offsite).toBeUndefined();
    });

    test("an SFTP target with its password, key and host key, kept 7/4/6 by default", () => {
        expect(parse(SFTP).offsite).toEqual({
            repository: SFTP.backupOffsite,
            kind: "sftp",
            keep: { daily: 7, weekly: 4, monthly: 6 },
        });
        expect(parse({ ...SFTP, backupOffsiteKeep: "14/8/12" }).offsite?.keep).toEqual({
            daily: 14,
            weekly: 8,
            monthly: 12,
        });
    });

    test("a target without its password says how to make and keep one", () => {
        expect(problems({ ...SFTP, backupOffsitePassword: undefined })).toEqual([
            `\`${P}:backupOffsitePassword\` (value hidden) is unset, and backupOffsite needs it: make one (e.g. \`openssl rand -base64 32\`), keep it in your password manager off this server, and set it with \`pulumi config set --secret backupOffsitePassword\` (it asks for the value).`,
        ]);
        expect(problems({ ...SFTP, backupOffsitePassword: "short-one" })).toEqual([
            `\`${P}:backupOffsitePassword\` (value hidden) must be at least 20 characters on one line (it is the only key to the off-site copies); set another with \`pulumi config set --secret backupOffsitePassword\` before the first push.`,
        ]);
    });

    test("a password or key in plain text in the stack file is refused, its value hidden", () => {
        expect(problems(SFTP, ["backupOffsitePassword", "backupOffsiteSshKey"])).toEqual([
            `\`${P}:backupOffsitePassword\` (value hidden) is stored in plain text in the stack file: remove it with \`pulumi config rm backupOffsitePassword\` and set it again with \`pulumi config set --secret backupOffsitePassword\` (it asks for the value).`,
            `\`${P}:backupOffsiteSshKey\` (value hidden) is stored in plain text in the stack file: remove it with \`pulumi config rm backupOffsiteSshKey\` and set it again with \`pulumi config set --secret backupOffsiteSshKey\` (it asks for the value).`,
        ]);
    });

    test("an SFTP target needs a private key without passphrase and a pinned host key for its host", () => {
        expect(problems({ ...SFTP, backupOffsiteSshKey: undefined, backupOffsiteKnownHosts: undefined })).toEqual([
            `\`${P}:backupOffsiteSshKey\` (value hidden) is unset, and an sftp: backupOffsite needs it: make a key for the backups alone (\`ssh-keygen -t ed25519 -N '' -f offsite_key\`), add offsite_key.pub to the target user's authorized_keys, and set it with \`pulumi config set --secret backupOffsiteSshKey < offsite_key\`.`,
            `\`${P}:backupOffsiteKnownHosts\` is unset, and an sftp: backupOffsite needs the target's host key: \`ssh-keyscan nas.lan > known_hosts\`, compare it with the target's own /etc/ssh/ssh_host_*.pub, then \`pulumi config set backupOffsiteKnownHosts < known_hosts\`.`,
        ]);
        expect(problems({ ...SFTP, backupOffsiteSshKey: SFTP.backupOffsiteKnownHosts.slice(8) })).toEqual([
            `\`${P}:backupOffsiteSshKey\` (value hidden) is not an SSH private key (-----BEGIN OPENSSH PRIVATE KEY----- ... -----END ...); set the private half, not the .pub, with \`pulumi config set --secret backupOffsiteSshKey < offsite_key\`.`,
        ]);
        expect(problems({ ...SFTP, backupOffsiteSshKey: sshKey("a passphrase") })).toEqual([
            `\`${P}:backupOffsiteSshKey\` (value hidden) is protected by a passphrase, which the agent cannot type; make a key without one for the backups alone (\`ssh-keygen -t ed25519 -N '' -f offsite_key\`).`,
        ]);
        const port = { ...SFTP, backupOffsite: "sftp://backup@nas.lan:2222//srv/restic/mrs" };
        expect(problems(port)).toEqual([
            `\`${P}:backupOffsiteKnownHosts\` is "nas.lan ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPzV4b0Nq5I4uJ6yq8rQ3y3Y7a2m6xq3o...": has no key for [nas.lan]:2222, the host of backupOffsite; add the line \`ssh-keyscan -p 2222 nas.lan\` prints (unhashed), checked against the target's /etc/ssh/ssh_host_*.pub.`,
        ]);
        expect(
            parse({ ...port, backupOffsiteKnownHosts: `[nas.lan]:2222 ${SFTP.backupOffsiteKnownHosts.slice(8)}` })
                .offsite?.repository,
        ).toBe("sftp://backup@nas.lan:2222//srv/restic/mrs");
    });

    test("a target that is not SFTP or S3 on another machine is refused naming the forms", () => {
        expect(problems({ ...SFTP, backupOffsite: "/mnt/user/backups/restic" })).toEqual([
            `\`${P}:backupOffsite\` is "/mnt/user/backups/restic": must be an SFTP or S3 restic repository on another machine: sftp:user@host:/path or s3:https://host/bucket/path.`,
        ]);
        expect(problems({ ...SFTP, backupOffsite: "s3:bucket-only" })).toEqual([
            `\`${P}:backupOffsite\` is "s3:bucket-only": must be s3:https://host/bucket[/path] (s3:http:// only for a server on a private network).`,
        ]);
    });

    test("an S3 target needs its credentials file as a secret", () => {
        const s3 = { backupOffsite: "s3:https://s3.example.com/bucket/mrs", backupOffsitePassword: PASSWORD };
        expect(problems(s3)).toEqual([
            `\`${P}:backupOffsiteS3Credentials\` (value hidden) is unset, and an s3: backupOffsite needs it: an AWS credentials file's text ([default], aws_access_key_id = ..., aws_secret_access_key = ...), set with \`pulumi config set --secret backupOffsiteS3Credentials < credentials\`.`,
        ]);
        const creds = "[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG\n";
        expect(parse({ ...s3, backupOffsiteS3Credentials: creds }).offsite?.kind).toBe("s3");
    });

    test("the off-site keys without a target, or keeping no daily copy, are refused", () => {
        expect(problems({ backupOffsiteKeep: "7/4/6" })).toEqual([
            `\`${P}:backupOffsiteKeep\` is set but backupOffsite is not: set backupOffsite to the target (e.g. sftp:backup@nas:/srv/restic/marvel-rivals-stats), or remove it with \`pulumi config rm backupOffsiteKeep\`.`,
        ]);
        expect(problems({ ...SFTP, backupOffsiteKeep: "0/4/6" })).toEqual([
            `\`${P}:backupOffsiteKeep\` is "0/4/6": must keep at least 1 daily copy (the newest is always kept).`,
        ]);
        expect(problems({ ...SFTP, backupOffsiteKeep: "7 days" })).toEqual([
            `\`${P}:backupOffsiteKeep\` is "7 days": must be daily/weekly/monthly counts such as 7/4/6.`,
        ]);
    });
});

const value = <T>(o: pulumi.Input<T> | undefined) =>
    (pulumi.output(o) as unknown as { promise(): Promise<T> }).promise();
const secretness = (o: pulumi.Input<unknown> | undefined) =>
    (pulumi.output(o) as unknown as { isSecret: Promise<boolean> }).isSecret;

describe("what the backup container gets", () => {
    test("secrets as files (secret Outputs), the environment only paths, which the agent reads back", async () => {
        const inputs = offsiteContainerInputs({
            repository: SFTP.backupOffsite,
            keep: { daily: 7, weekly: 4, monthly: 6 },
            password: pulumi.secret(PASSWORD),
            sshKey: pulumi.secret(KEY.trim()),
            knownHosts: SFTP.backupOffsiteKnownHosts,
        });
        for (const e of inputs.envs) {
            expect(e).not.toContain(PASSWORD);
            expect(e).not.toContain("PRIVATE KEY");
        }
        const files: Record<string, { content: string | undefined; u: (typeof inputs.uploads)[number] }> =
            Object.fromEntries(
                await Promise.all(
                    inputs.uploads.map(async (u) => [await value(u.file), { content: await value(u.content), u }]),
                ),
            );
        expect(Object.keys(files).sort()).toEqual(
            ["known_hosts", "password", "ssh_key"].map((f) => `${OFFSITE_SECRETS_DIR}/${f}`),
        );
        expect(files[`${OFFSITE_SECRETS_DIR}/password`].content).toBe(PASSWORD);
        // OpenSSH refuses a key without its final newline.
        expect(files[`${OFFSITE_SECRETS_DIR}/ssh_key`].content).toBe(`${KEY.trim()}\n`);
        for (const { u } of Object.values(files)) {
            expect(await secretness(u.content)).toBe(true);
            expect(u.permissions).toBe("0444");
        }
        const env = Object.fromEntries(
            inputs.envs.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]),
        );
        expect(offsiteFromEnv(env)).toEqual({
            target: {
                repository: SFTP.backupOffsite,
                passwordFile: `${OFFSITE_SECRETS_DIR}/password`,
                sshKeyFile: `${OFFSITE_SECRETS_DIR}/ssh_key`,
                knownHostsFile: `${OFFSITE_SECRETS_DIR}/known_hosts`,
                s3CredentialsFile: undefined,
            },
            policy: { daily: 7, weekly: 4, monthly: 6 },
        });
    });

    test("no target configured: the agent sees none", () => {
        expect(offsiteFromEnv({})).toBeUndefined();
    });
});
