/**
 * A consumer domain's credit limit as the store's escrow needs it: a function of
 * the evidence counters and a time (reputation fades with time, so the limit at
 * the end of a grant can differ from the limit now; the store takes the smaller).
 */
import { creditLimit } from '../core/credit.ts';
import { reputationOf } from '../core/reputation.ts';
import type { ReputationCounters } from '../core/types.ts';
import type { CreditLimitFn } from '../adapters/store/dynamo.ts';
import type { Deps } from './deps.ts';

export function limitFn(config: Pick<Deps['config'], 'reputation' | 'credit'>): CreditLimitFn {
  return (c: ReputationCounters, at: number) => creditLimit(reputationOf(c, at, config.reputation), c.paidVolume, config.credit);
}
