// Deterministic sample data: players, matches and their participants, generated from a fixed PRNG seed so
// that every run produces the same rows. Inserts use ON CONFLICT DO NOTHING on the primary keys, so a
// second run changes nothing (issue 4: "running it twice changes nothing").
import type pg from "pg";
import { RANK_TIERS } from "./stats";

type Role = "vanguard" | "duelist" | "strategist";

/** Heroes with a made-up strength that tilts the sample win rates, so /api/heroes has something to rank. */
const HEROES: { name: string; role: Role; strength: number }[] = [
    { name: "Hulk", role: "vanguard", strength: 0.2 },
    { name: "Magneto", role: "vanguard", strength: 0.5 },
    { name: "Doctor Strange", role: "vanguard", strength: 0.4 },
    { name: "Groot", role: "vanguard", strength: -0.1 },
    { name: "Thor", role: "vanguard", strength: 0.0 },
    { name: "Venom", role: "vanguard", strength: 0.1 },
    { name: "Peni Parker", role: "vanguard", strength: -0.3 },
    { name: "Captain America", role: "vanguard", strength: -0.2 },
    { name: "Iron Man", role: "duelist", strength: 0.1 },
    { name: "Spider-Man", role: "duelist", strength: -0.3 },
    { name: "Black Panther", role: "duelist", strength: 0.2 },
    { name: "Star-Lord", role: "duelist", strength: 0.0 },
    { name: "Scarlet Witch", role: "duelist", strength: 0.3 },
    { name: "Psylocke", role: "duelist", strength: -0.1 },
    { name: "Hela", role: "duelist", strength: 0.5 },
    { name: "Magik", role: "duelist", strength: 0.1 },
    { name: "Moon Knight", role: "duelist", strength: 0.2 },
    { name: "Namor", role: "duelist", strength: -0.2 },
    { name: "Storm", role: "duelist", strength: -0.4 },
    { name: "Winter Soldier", role: "duelist", strength: 0.3 },
    { name: "Mantis", role: "strategist", strength: 0.2 },
    { name: "Luna Snow", role: "strategist", strength: 0.4 },
    { name: "Loki", role: "strategist", strength: 0.0 },
    { name: "Rocket Raccoon", role: "strategist", strength: 0.1 },
    { name: "Cloak & Dagger", role: "strategist", strength: 0.3 },
    { name: "Jeff the Land Shark", role: "strategist", strength: -0.2 },
    { name: "Adam Warlock", role: "strategist", strength: -0.1 },
    { name: "Invisible Woman", role: "strategist", strength: 0.2 },
];

// The tiers the sample players get: real tiers (stats.ts), all but the two highest.
export const SEED_RANK_TIERS = RANK_TIERS.slice(0, 7);
export const SEED_PLAYERS = 42;
export const SEED_MATCHES = 120;
const TEAM_SIZE = 6;
/** Every seeded row starts with this prefix, so seeded data is easy to recognise and to delete. */
export const SEED_PREFIX = "seed-";
const EPOCH = Date.UTC(2025, 0, 6, 18, 0, 0);
const MAPS = [
    "Yggsgard: Royal Palace",
    "Tokyo 2099: Shin-Shibuya",
    "Hydra Base: Hell's Heaven",
    "Klyntar: Symbiotic Surface",
];

/** mulberry32: a tiny PRNG; the same seed gives the same sequence on every machine. */
function prng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

export interface SeedData {
    players: { username: string; rank_tier: string; rank_score: number; discovered_at: string }[];
    matches: {
        match_id: string;
        mode: string;
        season: number;
        match_timestamp: string;
        duration_seconds: number;
        map_name: string;
    }[];
    participants: {
        match_id: string;
        username: string;
        hero_name: string;
        role: Role;
        team: number;
        won: boolean;
        kills: number;
        deaths: number;
        assists: number;
        damage: number;
        healing: number;
        damage_taken: number;
    }[];
}

export function generateSeedData(seed = 20250106): SeedData {
    const random = prng(seed);
    const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const shuffle = <T>(items: T[]): T[] => {
        for (let i = items.length - 1; i > 0; i--) {
            const j = Math.floor(random() * (i + 1));
            [items[i], items[j]] = [items[j]!, items[i]!];
        }
        return items;
    };

    const players = Array.from({ length: SEED_PLAYERS }, (_, i) => {
        const tier = SEED_RANK_TIERS[i % SEED_RANK_TIERS.length]!;
        return {
            username: `${SEED_PREFIX}player-${String(i + 1).padStart(3, "0")}`,
            rank_tier: tier,
            rank_score: SEED_RANK_TIERS.indexOf(tier) * 500 + int(0, 499),
            discovered_at: new Date(EPOCH).toISOString(),
        };
    });

    const matches: SeedData["matches"] = [];
    const participants: SeedData["participants"] = [];
    for (let m = 0; m < SEED_MATCHES; m++) {
        const match_id = `${SEED_PREFIX}match-${String(m + 1).padStart(4, "0")}`;
        matches.push({
            match_id,
            mode: "competitive",
            season: 1,
            match_timestamp: new Date(EPOCH + m * 37 * 60_000).toISOString(),
            duration_seconds: int(480, 1500),
            map_name: pick(MAPS),
        });
        const lobby = shuffle([...players]).slice(0, TEAM_SIZE * 2);
        const teams = [0, 1].map((team) => {
            // Two of each role per team, no hero twice in a team.
            const heroes = (["vanguard", "vanguard", "duelist", "duelist", "strategist", "strategist"] as Role[]).map(
                (r) => r,
            );
            const chosen: typeof HEROES = [];
            for (const role of heroes) {
                const options = HEROES.filter((h) => h.role === role && !chosen.includes(h));
                chosen.push(pick(options));
            }
            return { team, members: lobby.slice(team * TEAM_SIZE, (team + 1) * TEAM_SIZE), heroes: chosen };
        });
        const power = teams.map((t) => t.heroes.reduce((sum, h) => sum + h.strength, 0) + (random() - 0.5) * 2.5);
        const winner = power[0]! >= power[1]! ? 0 : 1;
        for (const t of teams) {
            t.members.forEach((player, i) => {
                const hero = t.heroes[i]!;
                participants.push({
                    match_id,
                    username: player.username,
                    hero_name: hero.name,
                    role: hero.role,
                    team: t.team,
                    won: t.team === winner,
                    kills: int(0, 30),
                    deaths: int(0, 15),
                    assists: int(0, 25),
                    damage: hero.role === "duelist" ? int(8000, 40000) : int(2000, 18000),
                    healing: hero.role === "strategist" ? int(8000, 35000) : int(0, 2000),
                    damage_taken: hero.role === "vanguard" ? int(15000, 50000) : int(3000, 20000),
                });
            });
        }
    }
    return { players, matches, participants };
}

export interface SeedReport {
    players: { total: number; inserted: number };
    matches: { total: number; inserted: number };
    match_participants: { total: number; inserted: number };
}

/** Inserts the sample data in one transaction; rows already there are left alone. */
export async function seed(pool: pg.Pool, data: SeedData = generateSeedData()): Promise<SeedReport> {
    const client = await pool.connect();
    let failed = false;
    try {
        await client.query("BEGIN");
        const column = <T, K extends keyof T>(rows: T[], key: K) => rows.map((r) => r[key]);
        const players = await client.query(
            `INSERT INTO players (username, rank_tier, rank_score, discovered_at, last_updated)
             SELECT u, t, s, d, d FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[]) AS x(u, t, s, d)
             ON CONFLICT DO NOTHING`,
            ["username", "rank_tier", "rank_score", "discovered_at"].map((k) =>
                column(data.players, k as keyof SeedData["players"][number]),
            ),
        );
        const matches = await client.query(
            `INSERT INTO matches (match_id, mode, season, match_timestamp, duration_seconds, map_name, created_at)
             SELECT id, mo, se, ts, du, ma, ts FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[], $5::int[], $6::text[])
                 AS x(id, mo, se, ts, du, ma)
             ON CONFLICT DO NOTHING`,
            ["match_id", "mode", "season", "match_timestamp", "duration_seconds", "map_name"].map((k) =>
                column(data.matches, k as keyof SeedData["matches"][number]),
            ),
        );
        const participants = await client.query(
            `INSERT INTO match_participants (match_id, username, hero_name, role, team, won, kills, deaths, assists, damage, healing, damage_taken)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bool[], $7::int[], $8::int[], $9::int[],
                                  $10::numeric[], $11::numeric[], $12::bigint[])
             ON CONFLICT DO NOTHING`,
            [
                "match_id",
                "username",
                "hero_name",
                "role",
                "team",
                "won",
                "kills",
                "deaths",
                "assists",
                "damage",
                "healing",
                "damage_taken",
            ].map((k) => column(data.participants, k as keyof SeedData["participants"][number])),
        );
        await client.query("COMMIT");
        return {
            players: { total: data.players.length, inserted: players.rowCount ?? 0 },
            matches: { total: data.matches.length, inserted: matches.rowCount ?? 0 },
            match_participants: { total: data.participants.length, inserted: participants.rowCount ?? 0 },
        };
    } catch (err) {
        failed = true;
        await client.query("ROLLBACK").catch(() => undefined);
        throw err;
    } finally {
        client.release(failed);
    }
}
