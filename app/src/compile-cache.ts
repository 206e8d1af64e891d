// Imported first by the entry points: Node's on-disk compile cache (Node 22.1+) stores the V8 bytecode of
// every module loaded after this, so later starts skip most parsing and compiling (issue 4: ready in under
// 1 s). The cache lives in NODE_COMPILE_CACHE if set, else in the OS temp directory; when it cannot be
// written (read-only filesystem), Node just runs without it.
import { enableCompileCache } from "node:module";

enableCompileCache?.();
