import { describe, expect, it } from "vitest";
import { wilsonInterval } from "../src/wilson";

describe("wilsonInterval", () => {
    // Reference values: R `prop.test(x, n, correct = FALSE)$conf.int` and the Wikipedia formula.
    it("matches published values", () => {
        const a = wilsonInterval(5, 10);
        expect(a.lower).toBeCloseTo(0.2366, 4);
        expect(a.upper).toBeCloseTo(0.7634, 4);
        const b = wilsonInterval(81, 263);
        expect(b.lower).toBeCloseTo(0.2553, 4);
        expect(b.upper).toBeCloseTo(0.3662, 4);
    });

    it("stays inside [0, 1] at the extremes, where the normal approximation does not", () => {
        const none = wilsonInterval(0, 3);
        expect(none.lower).toBe(0);
        expect(none.upper).toBeCloseTo(0.5615, 4);
        const all = wilsonInterval(3, 3);
        expect(all.lower).toBeCloseTo(0.4385, 4);
        expect(all.upper).toBe(1);
    });

    it("refuses impossible counts", () => {
        expect(() => wilsonInterval(4, 3)).toThrow("wilsonInterval needs integers 0 <= wins <= n (got wins=4, n=3)");
    });
});
