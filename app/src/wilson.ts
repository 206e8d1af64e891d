/** z for a two-sided 95% interval. */
export const Z95 = 1.959963984540054;

/**
 * The Wilson score interval for `wins` out of `n`: unlike the normal approximation it stays inside [0, 1]
 * and behaves for small n, which is exactly the case of a rarely picked hero.
 * https://en.wikipedia.org/wiki/Binomial_proportion_confidence_interval#Wilson_score_interval
 */
export function wilsonInterval(wins: number, n: number, z = Z95): { lower: number; upper: number } {
    if (!Number.isInteger(n) || n < 0 || !Number.isInteger(wins) || wins < 0 || wins > n) {
        throw new RangeError(`wilsonInterval needs integers 0 <= wins <= n (got wins=${wins}, n=${n})`);
    }
    if (n === 0) return { lower: 0, upper: 1 };
    const p = wins / n;
    const z2 = z * z;
    const denominator = 1 + z2 / n;
    const centre = (p + z2 / (2 * n)) / denominator;
    const margin = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denominator;
    // At 0 wins (or n wins) the bound is exactly 0 (or 1) in theory; floating point leaves 1e-17 behind.
    return {
        lower: wins === 0 ? 0 : Math.max(0, centre - margin),
        upper: wins === n ? 1 : Math.min(1, centre + margin),
    };
}
