// Issue 24 over the odin stack's resource graph (test/unit/leastPrivilege.ts).
import { graphChecks } from "./leastPrivilege";

graphChecks("odin");
