/** The pure core of obligation-chain: encoding, keys, records, obligations, policy, reputation, credit, settlement. */
export * from './types.ts';
export * from './errors.ts';
export * from './canonical.ts';
export * from './keys.ts';
export * from './records.ts';
export * from './obligation.ts';
export * from './policy.ts';
export * from './reputation.ts';
export * from './credit.ts';
export * from './settlement.ts';
