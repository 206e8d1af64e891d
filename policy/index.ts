// The policy pack as the Pulumi CLI loads it: `pulumi preview --policy-pack policy` (docs/policy.md).
// The rules live in rules.ts, which `npm run policy` and the unit tests use without the CLI.
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./rules";

new PolicyPack("marvel-rivals-stats", { enforcementLevel: "mandatory", policies });
