/**
 * Benchmark of the pure core on one thread. Signature-bearing operations are reported as
 * ops/s with a ratio: their cost per signature checked, relative to one bare node:crypto
 * verify of the same algorithm with a pre-parsed KeyObject (the floor for any verifier).
 */
import { createPrivateKey, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalize, sealCanonical } from '../core/canonical.ts';
import { generateKeyPair, publicKeyObject, VERIFIED_MEMO_SIZE, type KeyPair } from '../core/keys.ts';
import { createObligation, verifyObligation } from '../core/obligation.ts';
import { decide, type DecisionContext } from '../core/policy.ts';
import { createOffer, issueCredential } from '../core/records.ts';
import { DEFAULT_REPUTATION, evidenceDelta, reputationOf } from '../core/reputation.ts';
import { GENESIS, type KeyAlg, type Obligation } from '../core/types.ts';
import { compare, measure } from './measure.ts';
import type { BenchRow } from './types.ts';

const NOW = Date.UTC(2026, 5, 1);
const DAY = 86_400_000;
/** Per signature checked, the core may cost at most this many bare verifies. */
const TARGET_RATIO = 1.5;
const TARGET = `≤ ${TARGET_RATIO}x bare verify per signature checked`;

interface Fixture {
  domain: KeyPair;
  provider: KeyPair;
  device: KeyPair;
  ob: Obligation;
  create: () => Obligation;
  /** `n` obligations of as many devices, each with its own credential (their first obligations). */
  firsts: (n: number) => Obligation[];
  context: DecisionContext;
}

function fixture(alg: KeyAlg): Fixture {
  const domain = generateKeyPair(alg);
  const provider = generateKeyPair(alg);
  const device = generateKeyPair(alg);
  // sealed, as a device holds its credential (devices/scd.ts): encoded once for all its obligations
  const credential = sealCanonical(
    issueCredential(
      { domain: 'acme', deviceId: 'meter-1', deviceKey: device.publicKey, creditLimit: 1_000_000, notBefore: NOW - DAY, notAfter: NOW + 365 * DAY },
      domain.privateKey,
    ),
  );
  const offer = createOffer(
    { offerId: 'bench-offer', providerDomain: 'wifico', providerDevice: 'ap-7', service: 'wifi-access', price: 1_000, payTo: 'RwifiPayAddr1', consumer: 'acme/meter-1', expiresAt: NOW + DAY },
    provider.privateKey,
  ).body;
  const create = () =>
    createObligation({ credential, deviceKey: device.privateKey, offer, seq: 1, prev: GENESIS, issuedAt: NOW, dueBy: NOW + 7 * DAY });
  const firsts = (n: number) =>
    Array.from({ length: n }, (_, i) => {
      const own = issueCredential(
        { domain: 'acme', deviceId: 'meter-1', deviceKey: device.publicKey, creditLimit: 1_000_000 + i, notBefore: NOW - DAY, notAfter: NOW + 365 * DAY },
        domain.privateKey,
      );
      return createObligation({ credential: own, deviceKey: device.privateKey, offer, seq: 1, prev: GENESIS, issuedAt: NOW, dueBy: NOW + 7 * DAY });
    });
  const context: DecisionContext = {
    now: NOW,
    consumerDomainKey: domain.publicKey,
    offer,
    providerDomain: 'wifico',
    providerKey: provider.privateKey,
    threshold: 0.4,
    reputation: 0.5,
    creditLimit: 50_000,
    outstanding: 0,
    chainHead: undefined,
    seen: false,
  };
  return { domain, provider, device, ob: create(), create, firsts, context };
}

/** Bare sign and verify of the obligation's canonical body with pre-parsed KeyObjects. */
function bare(f: Fixture, alg: KeyAlg): { verify: () => boolean; sign: () => Buffer } {
  const data = Buffer.from(canonicalize(f.ob.body), 'utf8');
  const pub: KeyObject = publicKeyObject(f.device.publicKey);
  const priv = createPrivateKey({ key: Buffer.from(f.device.privateKey.pkcs8, 'base64url'), format: 'der', type: 'pkcs8' });
  const ops =
    alg === 'ed25519'
      ? { sign: () => sign(null, data, priv), verifyWith: (sig: Buffer) => () => verify(null, data, pub, sig) }
      : {
          sign: () => sign('sha256', data, { key: priv, dsaEncoding: 'ieee-p1363' }),
          verifyWith: (sig: Buffer) => () => verify('sha256', data, { key: pub, dsaEncoding: 'ieee-p1363' }, sig),
        };
  const check = ops.verifyWith(ops.sign());
  if (!check()) throw new Error('bench setup: bare verify failed');
  return { verify: check, sign: ops.sign };
}

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

/**
 * Ratios are measured by compare(): baseline and operation alternate in short rounds and
 * the median ratio is reported, so load from other processes cancels out.
 */
function signatureRows(alg: KeyAlg, wanted: (name: string) => boolean): BenchRow[] {
  const label = alg === 'ed25519' ? 'Ed25519' : 'P-256';
  const names = {
    verify: `${label} bare verify (baseline)`,
    sign: `${label} bare sign`,
    created: `${label} obligations created (the device's credential sealed, as devices/scd.ts holds it: encoded once)`,
    verified: `${label} obligations verified, a device's first (its credential checked too)`,
    verifiedAgain: `${label} obligations verified, a device's next ones (its credential's signature remembered from the first)`,
    accepted: `${label} obligations accepted (decide; the device's credential remembered, as for its every obligation after the first)`,
  };
  if (!Object.values(names).some(wanted)) return [];
  const f = fixture(alg);
  const b = bare(f, alg);
  const verifyNs = measure(b.verify).nsPerOp;
  const signVsVerify = compare(b.verify, b.sign);
  const rows: BenchRow[] = [
    { name: names.verify, value: Math.round(1e9 / verifyNs), unit: 'ops/s', ratio: 1 },
    { name: names.sign, value: Math.round(1e9 / signVsVerify.nsPerOp), unit: 'ops/s', ratio: round(signVsVerify.ratio) },
  ];
  if (wanted(names.created)) {
    // Creation checks no signature; it makes one. Ratio: its cost vs one bare sign.
    const c = compare(b.sign, f.create);
    rows.push({ name: names.created, value: Math.round(1e9 / c.nsPerOp), unit: 'ops/s', ratio: round(c.ratio), target: '≤ 1.5x bare sign (1 signature made)', ok: c.ratio <= TARGET_RATIO });
  }
  if (wanted(names.verified)) {
    // a device's first obligation: its credential's signature is checked too (a fresh credential
    // each call, more than verifyBytesOnce remembers, so none is remembered by the time it comes round)
    const firsts = f.firsts(VERIFIED_MEMO_SIZE + 1_000);
    let i = 0;
    const c = compare(b.verify, () => verifyObligation(firsts[i++ % firsts.length] as Obligation, f.domain.publicKey, NOW));
    const ratio = c.ratio / 2; // credential + device signature
    rows.push({ name: names.verified, value: Math.round(1e9 / c.nsPerOp), unit: 'ops/s', ratio: round(ratio), target: `${TARGET} (2 checked)`, ok: ratio <= TARGET_RATIO });
  }
  if (wanted(names.verifiedAgain)) {
    verifyObligation(f.ob, f.domain.publicKey, NOW);
    const c = compare(b.verify, () => verifyObligation(f.ob, f.domain.publicKey, NOW));
    const ratio = c.ratio; // the device signature; the credential's is remembered
    rows.push({ name: names.verifiedAgain, value: Math.round(1e9 / c.nsPerOp), unit: 'ops/s', ratio: round(ratio), target: `${TARGET} (1 checked)`, ok: ratio <= TARGET_RATIO });
  }
  if (wanted(names.accepted)) {
    const d = decide(f.ob, f.context);
    if (!d.accept) throw new Error(`bench setup: decide rejected: ${d.error.message}`);
    const c = compare(b.verify, () => decide(f.ob, f.context));
    // per bare-crypto cost: 1 verify (the device's; its credential's is remembered) and 1 sign (the acceptance)
    const ratio = c.ratio / (1 + signVsVerify.ratio);
    rows.push({
      name: names.accepted,
      value: Math.round(1e9 / c.nsPerOp),
      unit: 'ops/s',
      ratio: round(ratio),
      target: `≤ ${TARGET_RATIO}x the bare crypto it does (1 verify + 1 sign; the credential remembered)`,
      ok: ratio <= TARGET_RATIO,
    });
  }
  return rows;
}

/** Reputation query cost after folding `n` events into the counters. */
function reputationRow(n: number): { row: BenchRow; ns: number } {
  const p = DEFAULT_REPUTATION;
  const counters = { rScaled: 0, sScaled: 0 };
  for (let i = 0; i < n; i++) {
    const d = evidenceDelta(i % 20 === 0 ? 'defaulted' : 'fulfilled', 1_000 + (i % 5_000), p.epoch + i * 1_000, 1, p);
    counters.rScaled += d.rScaled;
    counters.sScaled += d.sScaled;
  }
  let now = p.epoch + n * 1_000;
  const t = measure(() => reputationOf(counters, now++, p), 500);
  return { row: { name: `reputation query at 10^${Math.log10(n)} obligations`, value: round(t.nsPerOp, 1), unit: 'ns/query' }, ns: t.nsPerOp };
}

/** All core measurements whose name contains `filter` (case-insensitive); all when absent. */
export async function benchCore(filter?: string): Promise<BenchRow[]> {
  const f = filter?.toLowerCase();
  const wanted = (name: string) => f === undefined || name.toLowerCase().includes(f) || 'core'.includes(f);
  const rows: BenchRow[] = [...signatureRows('ed25519', wanted), ...signatureRows('p256', wanted)];
  if (wanted('reputation query')) {
    const results = [1e3, 1e5, 1e6].map(reputationRow);
    rows.push(...results.map((r) => r.row));
    const first = results[0];
    const last = results[2];
    if (first !== undefined && last !== undefined) {
      const ratio = last.ns / first.ns;
      rows.push({ name: 'reputation query 10^6 / 10^3', value: round(ratio), unit: 'x', ratio: round(ratio), target: '≈ 1 (O(1), ≤ 1.5x)', ok: ratio <= 1.5 });
    }
  }
  return rows;
}
