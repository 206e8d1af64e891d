// `npm run rotate`: its arguments and the SQL that retires the old login role.
import { expect, test } from "vitest";
import { parseArgs, retireSql } from "../../scripts/rotate";
import { loginRoles } from "../../components/postgres";

test("rotates db or redis, on the stack chosen by --stack or PULUMI_STACK", () => {
    expect(parseArgs(["db", "--stack", "odin"], {})).toEqual({ what: "db", stack: "odin" });
    expect(parseArgs(["redis"], { PULUMI_STACK: "odin" })).toEqual({ what: "redis", stack: "odin" });
    expect(() => parseArgs([], {})).toThrow("rotate what? (nothing): db or redis");
    expect(() => parseArgs(["odin"], {})).toThrow('rotate what? "odin": db or redis');
    expect(() => parseArgs(["db", "odin"], {})).toThrow("unexpected argument odin");
});

test("the two login roles take turns: each rotation gives the new password to the one not serving", () => {
    expect(loginRoles("marvel_stats", 0)).toEqual({ active: "marvel_stats_a", inactive: "marvel_stats_b" });
    expect(loginRoles("marvel_stats", 1)).toEqual({ active: "marvel_stats_b", inactive: "marvel_stats_a" });
    expect(loginRoles("marvel_stats", 2)).toEqual(loginRoles("marvel_stats", 0));
});

test("retiring a role takes its login and password and ends its sessions; odd names are refused", () => {
    expect(retireSql("marvel_stats_a")).toBe(
        [
            'ALTER ROLE "marvel_stats_a" WITH NOLOGIN PASSWORD NULL;',
            "SELECT count(pg_terminate_backend(pid)) AS ended FROM pg_stat_activity WHERE usename = 'marvel_stats_a';",
        ].join("\n"),
    );
    expect(() => retireSql('x"; DROP ROLE y; --')).toThrow("is not plain");
});
