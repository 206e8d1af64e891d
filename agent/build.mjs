// Compiles the agent for its image (agent/Dockerfile): Node's own type stripping (module.stripTypeScriptTypes,
// Node >= 22.13), no compiler to install. The agent is written in erasable TypeScript only (no enums,
// namespaces or parameter properties), so stripping is the whole compilation; relative imports get the
// .mjs extension of their output. The type checking is done by `npm run typecheck` in the repository.
//   node build.mjs SRC_DIR OUT_DIR
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { stripTypeScriptTypes } from "node:module";
import * as path from "node:path";

const [src, out] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
for (const f of readdirSync(src).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))) {
    const js = stripTypeScriptTypes(readFileSync(path.join(src, f), "utf8"), { mode: "strip" }).replace(
        /(\bfrom\s+["'])(\.\.?\/[^"']+)(["'])/g,
        (_, a, spec, b) => `${a}${spec}.mjs${b}`,
    );
    writeFileSync(path.join(out, f.replace(/\.ts$/, ".mjs")), js);
}
