/**
 * Readers of the shared ledger's obligation, outcome and settlement records.
 * Every item is untrusted input (another hub, or anyone granted write, may
 * publish anything under any key): each kind is validated with one schema,
 * its signature checked with the key of the domain that must have signed it,
 * and the item's real publisher checked against that domain's hub (the
 * publisher its domain record was published from). Anything else throws
 * InvalidRecordError, which callers count and skip — never fatal.
 *
 * A domain may have rotated its key: each signature is checked with the key in
 * force when the record says it was signed (core/domain-keys.ts checkDated), so
 * records signed before a rotation stay valid after it.
 */
import { InvalidRecordError, ObligationError } from '../core/errors.ts';
import { verifyAcceptance, verifyObligation } from '../core/obligation.ts';
import { keyFingerprint } from '../core/keys.ts';
import { checkDated, type DomainKeys } from '../core/domain-keys.ts';
import { parseAccepted, parseOutcome, parseRevocation, parseSettlement, verifySignedBy } from '../core/records.ts';
import type { AcceptedObligation, OutcomeBody, RevocationBody, SettlementRecord, Signed } from '../core/types.ts';
import type { LedgerItem } from '../adapters/ports.ts';
import type { DomainDirectory } from './directory.ts';

/** Ledger keys of the records this system publishes. */
export const ledgerKeys = {
  obligation: (id: string) => id,
  outcome: (id: string) => `outcome:${id}`,
  provider: (d: string) => `p:${d}`,
  consumer: (d: string) => `c:${d}`,
  /** A fee bump's records (`replacement`: its txid) are new items beside the original's, never duplicates of them. */
  settlement: (settlementId: string, phase: SettlementRecord['phase'], replacement?: string) =>
    replacement === undefined ? `settlement:${settlementId}:${phase}` : `settlement:${settlementId}:${phase}:${replacement}`,
  /** A revocation on the `domains` stream: one per device key (fingerprint: core/keys.ts keyFingerprint). */
  revocation: (domain: string, deviceId: string, fingerprint: string) => `revocation:${domain}/${deviceId}/${fingerprint}`,
  revocations: (domain: string) => `revocations:${domain}`,
} as const;

/** True when the item looks like a revocation (its first key); the reader still verifies everything. */
export const isRevocationItem = (item: LedgerItem): boolean => item.keys[0]?.startsWith('revocation:') ?? false;

/** True when the item looks like an outcome (its first key); the reader still verifies everything. */
export const isOutcomeItem = (item: LedgerItem): boolean => item.keys[0]?.startsWith('outcome:') ?? false;

async function signer(directory: DomainDirectory, domain: string, item: LedgerItem): Promise<DomainKeys> {
  const keys = await directory.keys(domain);
  if (!keys) throw new InvalidRecordError(`record signed for unknown domain ${domain}`, { txid: item.txid, domain });
  if (item.publisher !== keys.record.body.publisher) {
    throw new InvalidRecordError(`record of ${domain} published by ${item.publisher}, not by its hub ${keys.record.body.publisher}`, {
      txid: item.txid,
      domain,
    });
  }
  return keys;
}

/** Run a core check; its typed failure becomes InvalidRecordError naming the item. */
function checked<T>(what: string, item: LedgerItem, check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (e instanceof ObligationError) throw new InvalidRecordError(`${what}: ${e.message}`, { txid: item.txid, code: e.code });
    throw e;
  }
}

/**
 * An accepted obligation: the device's signature and credential (from the consumer
 * domain's key), the provider's acceptance signature, and publication by the
 * provider's hub, under its own id key.
 */
export async function readAccepted(directory: DomainDirectory, item: LedgerItem): Promise<AcceptedObligation> {
  const accepted = checked('accepted obligation', item, () => parseAccepted(item.data));
  const b = accepted.obligation.body;
  if (item.keys[0] !== ledgerKeys.obligation(accepted.obligation.id)) {
    throw new InvalidRecordError('accepted obligation is not under its id', { txid: item.txid });
  }
  const provider = await signer(directory, b.providerDomain, item);
  const consumer = await directory.keys(b.consumerDomain);
  if (!consumer) throw new InvalidRecordError(`obligation of unknown consumer domain ${b.consumerDomain}`, { txid: item.txid });
  const certificate = accepted.acceptance.body.certificate;
  checked('accepted obligation', item, () => {
    // re-verified as of its issue time: a credential may have expired since; its domain's key when it was issued
    checkDated(consumer, b.credential.body.notBefore, (key) => verifyObligation(accepted.obligation, key, b.issuedAt));
    checkDated(provider, certificate?.body.notBefore ?? accepted.acceptance.body.acceptedAt, (key) => verifyAcceptance(accepted, key));
  });
  return accepted;
}

/** An outcome: signed by the provider domain it names, published by that domain's hub. */
export async function readOutcome(directory: DomainDirectory, item: LedgerItem): Promise<Signed<OutcomeBody>> {
  const outcome = checked('outcome', item, () => parseOutcome(item.data));
  if (item.keys[0] !== ledgerKeys.outcome(outcome.body.obligationId)) {
    throw new InvalidRecordError('outcome is not under its obligation', { txid: item.txid });
  }
  const provider = await signer(directory, outcome.body.providerDomain, item);
  checked('outcome', item, () => checkDated(provider, outcome.body.at, (key) => verifySignedBy(outcome, outcome.body.providerDomain, key)));
  return outcome;
}

/** A settlement record: signed by the consumer domain that pays, published by that domain's hub. */
export async function readSettlement(directory: DomainDirectory, item: LedgerItem): Promise<Signed<SettlementRecord>> {
  const record = checked('settlement', item, () => parseSettlement(item.data));
  const r = record.body;
  if (item.keys[0] !== ledgerKeys.settlement(r.settlementId, r.phase, r.replaces === undefined ? undefined : r.txid)) {
    throw new InvalidRecordError('settlement is not under its id', { txid: item.txid });
  }
  const consumer = await signer(directory, r.consumerDomain, item);
  checked('settlement', item, () => checkDated(consumer, r.at, (key) => verifySignedBy(record, r.consumerDomain, key)));
  return record;
}

/** A revocation: signed by the domain it names, published by that domain's hub, under its own key. */
export async function readRevocation(directory: DomainDirectory, item: LedgerItem): Promise<Signed<RevocationBody>> {
  const record = checked('revocation', item, () => parseRevocation(item.data));
  const r = record.body;
  if (item.keys[0] !== ledgerKeys.revocation(r.domain, r.deviceId, keyFingerprint(r.deviceKey))) {
    throw new InvalidRecordError('revocation is not under its key', { txid: item.txid });
  }
  const domain = await signer(directory, r.domain, item);
  checked('revocation', item, () => checkDated(domain, r.at, (key) => verifySignedBy(record, r.domain, key)));
  return record;
}
