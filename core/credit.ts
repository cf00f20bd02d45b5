/**
 * Credit limit of a consumer domain (OUR model): nothing below a minimum reputation, then a
 * base line plus k · reputation · paidVolume, capped. Monotone non-decreasing in reputation
 * and in paid volume, so paying debts and earning reputation only ever raise it.
 */
export interface CreditParams {
  /** Sats granted to any domain at or above minReputation (a newcomer has 0.5). */
  base: number;
  /** Sats of limit per sat paid, at reputation 1. */
  k: number;
  /** Largest limit, sats. */
  cap: number;
  /** Below this reputation the limit is 0. */
  minReputation: number;
}

export const DEFAULT_CREDIT: CreditParams = {
  base: 50_000,
  k: 2,
  cap: 10_000_000,
  minReputation: 0.3,
};

/** min(cap, floor(base + k · reputation · paidVolume)), or 0 below minReputation. Integer sats. */
export function creditLimit(reputation: number, paidVolume: number, p: CreditParams = DEFAULT_CREDIT): number {
  if (!(reputation >= p.minReputation)) return 0;
  const volume = Math.max(0, paidVolume);
  return Math.max(0, Math.min(p.cap, Math.floor(p.base + p.k * reputation * volume)));
}
