/**
 * The obligation chain primitive: a consumer device's signed promise to pay,
 * vouched for by its domain's credential and linked to the device's previous
 * obligation by `prev` (hash chain) and `seq`.
 */
import { canonicalize, idOf, sha256Hex } from './canonical.ts';
import {
  BadCredentialError,
  BadSignatureError,
  ChainBreakError,
  ExpiredError,
  MalformedError,
} from './errors.ts';
import { signBytes, signValue, verifyBytes, verifyBytesOnce, verifySigned, type PrivateKeyRef } from './keys.ts';
import { signingKeyOf } from './records.ts';
import {
  GENESIS,
  type AcceptanceBody,
  type AcceptedObligation,
  type DeviceCredential,
  type HubKeyCertificate,
  type Obligation,
  type ObligationBody,
  type Offer,
  type PublicKeyRef,
  type Signed,
} from './types.ts';

/** How far in the future an obligation's issuedAt may be, to allow for device clock skew. */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

/** A device's last link: what the next obligation must continue. */
export interface ChainLink {
  seq: number;
  id: string;
}

export interface CreateObligationInput {
  credential: Signed<DeviceCredential>;
  deviceKey: PrivateKeyRef;
  offer: Offer;
  seq: number;
  prev: string;
  issuedAt: number;
  dueBy: number;
}

/**
 * Build and sign an obligation for `offer`. Consumer names come from the credential,
 * everything about the sale from the offer; id = sha256(canonical(body)) and the device
 * signs the same canonical text. A credential sealed with sealCanonical (as devices hold
 * theirs) is encoded once, not for every obligation.
 */
export function createObligation(input: CreateObligationInput): Obligation {
  const { credential, offer } = input;
  const body: ObligationBody = {
    version: 1,
    consumerDomain: credential.body.domain,
    consumerDevice: credential.body.deviceId,
    providerDomain: offer.providerDomain,
    providerDevice: offer.providerDevice,
    service: offer.service,
    amount: offer.price,
    payTo: offer.payTo,
    offerId: offer.offerId,
    issuedAt: input.issuedAt,
    dueBy: input.dueBy,
    seq: input.seq,
    prev: input.prev,
    credential,
  };
  // one UTF-8 copy of the text for the id and the signature
  const bytes = Buffer.from(canonicalize(body), 'utf8');
  return { id: sha256Hex(bytes), body, sig: signBytes(input.deviceKey, bytes) };
}

/** The link an obligation leaves for its successor. */
export function linkOf(ob: Obligation): ChainLink {
  return { seq: ob.body.seq, id: ob.id };
}

/**
 * Verify one obligation on its own (not its place in the chain, not the offer):
 * - MalformedError: id is not sha256(canonical(body));
 * - ExpiredError: dueBy <= issuedAt, or issuedAt more than MAX_CLOCK_SKEW_MS after `now`;
 * - BadCredentialError: credential not signed by `consumerDomainKey`, of another domain or
 *   device, not valid at issuedAt or at `now`, or amount above its creditLimit;
 * - BadSignatureError: the device signature does not verify with the credential's key.
 * To re-verify a historical record (e.g. from the ledger) after its credential expired,
 * pass now = ob.body.issuedAt.
 */
export function verifyObligation(ob: Obligation, consumerDomainKey: PublicKeyRef, now: number): void {
  const body = ob.body;
  const text = canonicalize(body);
  if (sha256Hex(text) !== ob.id) throw new MalformedError('obligation id does not match its body', { id: ob.id });

  if (body.dueBy <= body.issuedAt) {
    throw new ExpiredError('obligation is due before it was issued', { issuedAt: body.issuedAt, dueBy: body.dueBy });
  }
  if (body.issuedAt > now + MAX_CLOCK_SKEW_MS) {
    throw new ExpiredError('obligation is issued in the future', { issuedAt: body.issuedAt, now });
  }

  const cred = body.credential;
  const c = cred.body;
  if (c.domain !== body.consumerDomain || cred.by !== body.consumerDomain) {
    throw new BadCredentialError('credential is of another domain', { credential: c.domain, consumer: body.consumerDomain });
  }
  if (c.deviceId !== body.consumerDevice) {
    throw new BadCredentialError('credential is of another device', { credential: c.deviceId, device: body.consumerDevice });
  }
  for (const at of [body.issuedAt, now]) {
    if (at < c.notBefore || at > c.notAfter) {
      throw new BadCredentialError(`credential is not valid at ${at}`, { at, notBefore: c.notBefore, notAfter: c.notAfter });
    }
  }
  if (body.amount > c.creditLimit) {
    throw new BadCredentialError('amount is above the device credit limit', { amount: body.amount, limit: c.creditLimit });
  }
  // a device shows the same credential in every obligation: verified once per process
  if (!verifyBytesOnce(consumerDomainKey, canonicalize(c), cred.sig)) {
    throw new BadCredentialError("credential is not signed by the consumer domain's key (after a key rotation, its devices renew their credentials)", { domain: c.domain });
  }
  if (!verifyBytes(c.deviceKey, text, ob.sig)) {
    throw new BadSignatureError('device signature does not verify', { device: `${body.consumerDomain}/${body.consumerDevice}` });
  }
}

/**
 * Verify that `obs` are consecutive links of one device's chain: each id hashes its body
 * (MalformedError otherwise), and each obligation has seq = previous + 1 and prev = previous
 * id. The first continues `start` when given, else it must be seq 1 with prev GENESIS.
 * Throws ChainBreakError naming the index of the first bad link. Signatures are not checked
 * here (see verifyObligation).
 */
export function verifyChain(obs: readonly Obligation[], start?: ChainLink): void {
  let expected: ChainLink = start ?? { seq: 0, id: GENESIS };
  const first = obs[0];
  if (first === undefined) return;
  const device = `${first.body.consumerDomain}/${first.body.consumerDevice}`;
  obs.forEach((ob, index) => {
    if (idOf(ob.body) !== ob.id) throw new MalformedError(`link ${index}: id does not match its body`, { index });
    const who = `${ob.body.consumerDomain}/${ob.body.consumerDevice}`;
    if (who !== device) throw new ChainBreakError(`link ${index}: obligation of ${who}, not ${device}`, { index });
    if (ob.body.seq !== expected.seq + 1 || ob.body.prev !== expected.id) {
      throw new ChainBreakError(`link ${index}: seq ${ob.body.seq} does not follow ${expected.seq}`, {
        index,
        seq: ob.body.seq,
        expectedSeq: expected.seq + 1,
        prev: ob.body.prev,
        expectedPrev: expected.id,
      });
    }
    expected = linkOf(ob);
  });
}

/**
 * The provider domain's countersignature: it accepts `ob` and will be paid at payTo.
 * Signed with the domain key, or with a hub key whose `certificate` the domain key signed.
 */
export function acceptanceOf(
  ob: Obligation,
  providerKey: PrivateKeyRef,
  now: number,
  certificate?: Signed<HubKeyCertificate>,
): Signed<AcceptanceBody> {
  const body: AcceptanceBody = {
    version: 1,
    obligationId: ob.id,
    providerDomain: ob.body.providerDomain,
    payTo: ob.body.payTo,
    acceptedAt: now,
    ...(certificate ? { certificate } : {}),
  };
  return signValue(body, providerKey, ob.body.providerDomain);
}

/**
 * Checks an acceptance is signed by its provider domain: with `providerDomainKey`, or
 * with a hub key certified by it and valid at acceptedAt. BadSignatureError otherwise.
 */
export function verifyAcceptanceSignature(acceptance: Signed<AcceptanceBody>, providerDomainKey: PublicKeyRef): void {
  const a = acceptance.body;
  const key = signingKeyOf(a, a.providerDomain, providerDomainKey, a.acceptedAt);
  if (acceptance.by !== a.providerDomain || !verifySigned(acceptance, key)) {
    throw new BadSignatureError('acceptance is not signed by the provider domain', { provider: a.providerDomain });
  }
}

/**
 * Check an acceptance belongs to its obligation (MalformedError: other id, provider or
 * payTo) and is signed by the provider domain (BadSignatureError).
 */
export function verifyAcceptance(accepted: AcceptedObligation, providerDomainKey: PublicKeyRef): void {
  const { obligation: ob, acceptance } = accepted;
  const a = acceptance.body;
  if (a.obligationId !== ob.id || a.providerDomain !== ob.body.providerDomain || a.payTo !== ob.body.payTo) {
    throw new MalformedError('acceptance does not match its obligation', { id: ob.id });
  }
  verifyAcceptanceSignature(acceptance, providerDomainKey);
}
