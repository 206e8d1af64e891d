// Issue 24 over the dev stack's resource graph (test/unit/leastPrivilege.ts).
import { graphChecks } from "./leastPrivilege";

graphChecks("dev");
