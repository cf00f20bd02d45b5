/**
 * The service consumer's device (SCD): asks a provider device for a service,
 * checks the SP domain's signed offer, signs an obligation linked to its
 * previous one and sends it; on a signed accept it moves its chain forward.
 * A refused obligation leaves the chain where it was. Lost messages are sent
 * again unchanged (the back-end answers duplicates with the same reply).
 *
 * A device is an IoT thing of its own hub only. To buy from a provider domain
 * hosted at another hub (`providerApi` names that hub's API) it asks for the
 * offer and sends the obligation through that hub's public HTTP API instead
 * (POST /offers, POST /obligations); the same checks apply to the answers.
 * Its obligations form one hash chain across all hubs.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from './atomic-file.ts';
import { join } from 'node:path';
import { canonicalize, sealCanonical, sha256Hex } from '../core/canonical.ts';
import { createObligation, verifyAcceptanceSignature } from '../core/obligation.ts';
import { createRenewalRequest, parseCredential, verifyOffer } from '../core/records.ts';
import { sameKey, signValue, verifyBytes, type PrivateKeyRef } from '../core/keys.ts';
import {
  GENESIS,
  type AcceptanceBody,
  type DeviceCredential,
  type Obligation,
  type Offer,
  type PublicKeyRef,
  type Signed,
} from '../core/types.ts';
import { DEFAULT_TOPIC_ROOT, ingestRules, topicsUnder, type IngestRules } from '../service/topics.ts';
import type { DeviceLink } from './link.ts';

export interface ChainState {
  seq: number;
  id: string;
}

/** Where a device keeps its chain head between runs. */
export interface ChainStore {
  load(): Promise<ChainState>;
  save(state: ChainState): Promise<void>;
}

export class MemoryChainStore implements ChainStore {
  private state: ChainState = { seq: 0, id: GENESIS };
  async load(): Promise<ChainState> {
    return this.state;
  }
  async save(state: ChainState): Promise<void> {
    this.state = state;
  }
}

export class FileChainStore implements ChainStore {
  constructor(private readonly file: string) {}
  async load(): Promise<ChainState> {
    try {
      return JSON.parse(await readFile(this.file, 'utf8')) as ChainState;
    } catch {
      return { seq: 0, id: GENESIS };
    }
  }
  /** Atomic: write a temporary file next to it, flush it, then rename over it (a crash leaves the old or the new state, never a torn one). */
  async save(state: ChainState): Promise<void> {
    await writeFileAtomic(this.file, JSON.stringify(state));
  }
  static forDevice(dir: string, deviceId: string): FileChainStore {
    return new FileChainStore(join(dir, `${deviceId}.chain.json`));
  }
}

export interface DeviceError {
  code: string;
  class: string;
  message: string;
  /** F04 / F05 refusals carry the device's chain head as the hub knows it (`head`: seq, id, the head obligation). */
  details?: { head?: unknown };
}

export type BuyResult =
  | { ok: true; obligationId: string; amount: number; seq: number; latencyMs: number; acceptMs: number }
  | { ok: false; stage: 'offer' | 'accept'; error: DeviceError; latencyMs: number };


/**
 * Default payment window a consumer device signs (dueBy − issuedAt): 15
 * minutes. It must be at least the provider's minimum term, which exceeds the
 * settlement interval (AWS: settle every 5 minutes, minimum term 7.5 minutes
 * by default); a 60 s window would make an honest domain late by construction.
 */
export const DEFAULT_PAY_WINDOW_MS = 15 * 60_000;

export interface ConsumerDeviceOptions {
  domain: string;
  deviceId: string;
  privateKey: PrivateKeyRef;
  credential: Signed<DeviceCredential>;
  link: DeviceLink;
  /** The stage's topic root (default `oc`: service/topics.ts). */
  topicRoot?: string;
  /**
   * The stage's topic rules the device publishes to by Basic Ingest (the IoT stack's
   * `IngestRules` output); default: the root's (service/topics.ts: ingestRules).
   */
  ingestRules?: IngestRules;
  /**
   * The SP domain's current public key, as its hub's GET /domains/{domain} gives it (`key`:
   * the record's, or its latest rotation's). `fresh`: not from a cache (an offer or
   * acceptance did not verify with the cached key: the provider may have rotated it).
   */
  providerKey: (domain: string, fresh?: boolean) => Promise<PublicKeyRef>;
  /** Base URL of the API of the hub hosting `domain`, when that is not this device's hub (else undefined: MQTT). */
  providerApi?: (domain: string) => string | undefined;
  chain?: ChainStore;
  /**
   * After a refusal as a replay (F04) or a broken chain link (F05) — its chain
   * head fell behind, e.g. an acceptance reply was lost — the device adopts the
   * chain head the refusal carries, if the obligation it names verifies with the
   * device's own key, and tries once more. Only when the refusal carries none
   * (an older hub), or one it does not adopt, does it ask this base URL of its own
   * hub's API (GET /domains/{domain}/devices/{device}/head), with the same check.
   */
  backendApi?: string;
  /** dueBy = issuedAt + payWindowMs (default DEFAULT_PAY_WINDOW_MS). */
  payWindowMs?: number;
  /**
   * Renewal of the (short-lived) credential through the device's own back-end: the base
   * URL of its hub's API, and how long before the credential ends to renew it (default:
   * a third of its validity). Without it the device keeps its credential until it ends.
   */
  renewal?: { api: string; beforeMs?: number };
  /**
   * Ask for standing offers (default true): one signed offer serves this device's purchases
   * of one service from one provider device until it expires or its cap is reached, so a
   * purchase is one obligation and its answer — no offer request and offer per purchase
   * (issue 11: IoT Core bills every message). A held offer the back-end refuses as used up
   * (F20_OFFER_EXHAUSTED), expired (F03) or unknown (F06) is dropped and the purchase made
   * once more with a fresh offer. False: an offer per purchase.
   */
  standingOffers?: boolean;
  /** How long to wait for an answer before sending again. */
  timeoutMs?: number;
  attempts?: number;
  now?: () => number;
}

type Waiter = { resolve: (v: unknown) => void };

export class ConsumerDevice {
  private readonly waiting = new Map<string, Waiter>();
  /** Standing offers held, by `providerDomain/providerDevice/service`, with what was accepted under each. */
  private readonly held = new Map<string, { offer: Signed<Offer>; spent: number }>();
  private readonly chain: ChainStore;
  private readonly topics: ReturnType<typeof topicsUnder>;
  private queue: Promise<unknown> = Promise.resolve();
  /** The credential signed with now, sealed: encoded once for all the obligations that carry it. */
  private current: Signed<DeviceCredential>;

  constructor(private readonly o: ConsumerDeviceOptions) {
    this.current = sealCanonical(o.credential);
    this.chain = o.chain ?? new MemoryChainStore();
    const root = o.topicRoot ?? DEFAULT_TOPIC_ROOT;
    this.topics = topicsUnder(root, o.ingestRules ?? ingestRules(root));
    o.link.onMessage((topic, payload) => this.onMessage(topic, payload));
  }

  get id(): string {
    return this.o.deviceId;
  }

  async start(): Promise<void> {
    await this.o.link.connect();
    await this.o.link.subscribe(this.topics.inbox(this.o.domain, this.o.deviceId), 0);
  }

  private onMessage(topic: string, payload: unknown): void {
    const p = payload as { requestId?: string; obligationId?: string } | null;
    if (!p || typeof p !== 'object') return;
    // oc/{domain}/{thing}/in/{kind}[/…]: a first acceptance comes on in/reply/{providerDomain}/{providerDevice}
    const kind = topic.split('/')[4];
    const key = kind === 'offer' ? `offer:${p.requestId}` : kind === 'reply' ? `reply:${p.obligationId ?? p.requestId}` : undefined;
    if (!key) return;
    const w = this.waiting.get(key);
    if (w) {
      this.waiting.delete(key);
      w.resolve(payload);
    }
  }

  /** Send `message` and wait for the answer keyed `key`, sending again on timeout. */
  private async exchange(key: string, send: () => Promise<void>): Promise<unknown> {
    const attempts = this.o.attempts ?? 4;
    const timeout = this.o.timeoutMs ?? 5000;
    for (let i = 0; i < attempts; i++) {
      const answer = new Promise<unknown>((resolve) => this.waiting.set(key, { resolve }));
      await send();
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([
        answer,
        new Promise<undefined>((r) => {
          timer = setTimeout(() => r(undefined), timeout * (i + 1));
        }),
      ]);
      clearTimeout(timer);
      if (result !== undefined) return result;
    }
    this.waiting.delete(key);
    return undefined;
  }

  /** Buy one service; purchases of one device run one after another (its chain is sequential). */
  buy(providerDomain: string, providerDevice: string, service: string): Promise<BuyResult> {
    const run = this.queue.then(() => this.buyNow(providerDomain, providerDevice, service));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The credential the device signs with now (renewed ones replace it). */
  get credential(): Signed<DeviceCredential> {
    return this.current;
  }

  /**
   * Renew the credential when it ends within `renewal.beforeMs`: a request signed with the
   * device key, answered by its back-end with a fresh credential for the same key. True when
   * renewed; false when not due or not configured. A refusal (e.g. F14_REVOKED) throws.
   * `now_`: renew whatever the credential's end (its domain rotated its key, say).
   */
  async renewIfDue(now_ = false): Promise<boolean> {
    const r = this.o.renewal;
    if (!r) return false;
    const now = (this.o.now ?? Date.now)();
    const c = this.current.body;
    if (!now_ && c.notAfter - now > (r.beforeMs ?? (c.notAfter - c.notBefore) / 3)) return false;
    const request = createRenewalRequest({ domain: this.o.domain, deviceId: this.o.deviceId, at: now }, this.o.privateKey);
    const answer = await this.post(r.api, `/domains/${this.o.domain}/devices/${this.o.deviceId}/renewal`, { request });
    if (!answer) throw new Error('no answer to the credential renewal');
    if (answer.error) throw Object.assign(new Error(answer.error.message), { code: answer.error.code });
    const fresh = parseCredential(answer.credential);
    if (fresh.body.domain !== this.o.domain || fresh.body.deviceId !== this.o.deviceId || !sameKey(fresh.body.deviceKey, c.deviceKey)) {
      throw new Error('the renewed credential is not for this device key');
    }
    this.current = sealCanonical(fresh);
    return true;
  }

  /** A held standing offer that can carry one more purchase now, with a margin for the answer's way back. */
  private usableHeld(slot: string, now: number): Signed<Offer> | undefined {
    const h = this.held.get(slot);
    if (!h) return undefined;
    const b = h.offer.body;
    if (b.cap === undefined || h.spent + b.price > b.cap || now + (this.o.timeoutMs ?? 5000) >= b.expiresAt) {
      this.held.delete(slot);
      return undefined;
    }
    return h.offer;
  }

  private async buyNow(providerDomain: string, providerDevice: string, service: string, retried = false): Promise<BuyResult> {
    const now = this.o.now ?? Date.now;
    // a failed renewal leaves the current credential, which may still be valid: the provider decides
    await this.renewIfDue().catch(() => false);
    const started = now();
    const remote = this.o.providerApi?.(providerDomain);
    const slot = `${providerDomain}/${providerDevice}/${service}`;
    const held = this.usableHeld(slot, started);
    const offer = held ?? (await this.askOffer(providerDomain, providerDevice, service, remote, now));
    if ('ok' in offer) return { ...offer, latencyMs: now() - started };
    if (!held && offer.body.cap !== undefined && this.o.standingOffers !== false) this.held.set(slot, { offer, spent: 0 });
    const result = await this.purchase(offer, remote, started, now);
    if (result.ok) {
      const h = this.held.get(slot);
      if (h && h.offer === offer) h.spent += result.amount;
      return result;
    }
    const code = result.error.code;
    if (code === 'F02_BAD_CREDENTIAL' && !retried && this.o.renewal && (await this.renewIfDue(true).catch(() => false))) {
      // refused for its credential (its domain may have rotated its key): once more with a fresh one
      return this.buyNow(providerDomain, providerDevice, service, true);
    }
    if (held && result.stage === 'accept' && (code === 'F20_OFFER_EXHAUSTED' || code === 'F03_EXPIRED' || code === 'F06_OFFER_MISMATCH')) {
      // the back-end's view of the held offer wins: drop it, and buy once more with a fresh one
      this.held.delete(slot);
      if (!retried) return this.buyNow(providerDomain, providerDevice, service, true);
    }
    return result;
  }

  /** Ask the provider for an offer (a standing one unless standingOffers is false) and verify it; a failed purchase otherwise. */
  private async askOffer(
    providerDomain: string,
    providerDevice: string,
    service: string,
    remote: string | undefined,
    now: () => number,
  ): Promise<Signed<Offer> | BuyResult> {
    const started = now();
    const { domain, deviceId, link } = this.o;
    const requestId = randomUUID();
    const standing = this.o.standingOffers !== false ? { standing: true as const } : {};
    const offerMsg = (
      remote
        ? // over HTTP the request is signed with this device's key (no broker vouches for it)
          await this.post(remote, '/offers', {
            request: signValue(
              { requestId, consumerDomain: domain, consumerDevice: deviceId, providerDomain, providerDevice, service, issuedAt: now(), ...standing },
              this.o.privateKey,
              `${domain}/${deviceId}`,
            ),
            credential: this.current,
          })
        : await this.exchange(`offer:${requestId}`, () =>
            link.publish(this.topics.ingest(domain, deviceId, 'request'), { requestId, providerDomain, providerDevice, service, ...standing }, 1),
          )
    ) as { offer?: Signed<Offer>; error?: DeviceError } | undefined;
    if (!offerMsg) return fail('offer', 'TIMEOUT', 'no offer arrived', started, now);
    if (offerMsg.error || !offerMsg.offer) {
      return { ok: false, stage: 'offer', error: offerMsg.error ?? err('NO_OFFER', 'empty offer'), latencyMs: now() - started };
    }
    const offer = offerMsg.offer;
    try {
      verifyOffer(offer, await this.o.providerKey(providerDomain));
    } catch {
      try {
        // the provider may have rotated its key: once more with its key read afresh
        verifyOffer(offer, await this.o.providerKey(providerDomain, true));
      } catch (e) {
        return fail('offer', 'BAD_OFFER', (e as Error).message, started, now);
      }
    }
    // an offer for another purchase than the one asked for (or for another device) is not used, held or not
    const b = offer.body;
    if (b.providerDomain !== providerDomain || b.providerDevice !== providerDevice || b.service !== service || b.consumer !== `${domain}/${deviceId}`) {
      return fail('offer', 'BAD_OFFER', `offer ${b.offerId} is for ${b.consumer} buying ${b.service} from ${b.providerDomain}/${b.providerDevice}`, started, now);
    }
    return offer;
  }

  /** Sign and send the obligation for `offer`; the purchase's outcome. */
  private async purchase(offer: Signed<Offer>, remote: string | undefined, started: number, now: () => number): Promise<BuyResult> {
    const providerDomain = offer.body.providerDomain;
    let sent = await this.sendObligation(offer.body, remote, now);
    if (!sent.reply) return fail('accept', 'TIMEOUT', 'no answer to the obligation', started, now);
    const code = sent.reply.error?.code;
    if (!sent.reply.accepted && (code === 'F04_REPLAY' || code === 'F05_CHAIN_BREAK') && ((await this.adopt(sent.reply.error?.details?.head)) || (await this.resync()))) {
      // its chain head was behind the back-end's: once more from the head it just verified
      sent = await this.sendObligation(offer.body, remote, now);
      if (!sent.reply) return fail('accept', 'TIMEOUT', 'no answer to the obligation', started, now);
    }
    const { ob, reply, sentAt } = sent;
    if (!reply.accepted || !reply.acceptance) {
      return { ok: false, stage: 'accept', error: reply.error ?? err('REFUSED', 'refused'), latencyMs: now() - started };
    }
    const providerKey = await this.o.providerKey(providerDomain);
    const signed = acceptedBy(reply.acceptance, providerKey) || acceptedBy(reply.acceptance, await this.o.providerKey(providerDomain, true));
    if (reply.acceptance.body.obligationId !== ob.id || !signed) {
      return fail('accept', 'BAD_ACCEPTANCE', 'the acceptance is not signed by the provider domain', started, now);
    }
    await this.chain.save({ seq: ob.body.seq, id: ob.id });
    return { ok: true, obligationId: ob.id, amount: ob.body.amount, seq: ob.body.seq, latencyMs: now() - started, acceptMs: now() - sentAt };
  }

  /** Sign the next obligation of the chain for `offer` and send it; the answer, or undefined after the attempts. */
  private async sendObligation(offer: Offer, remote: string | undefined, now: () => number) {
    const { domain, deviceId, link } = this.o;
    const head = await this.chain.load();
    const issuedAt = now();
    const ob = createObligation({
      credential: this.current,
      deviceKey: this.o.privateKey,
      offer,
      seq: head.seq + 1,
      prev: head.id,
      issuedAt,
      dueBy: issuedAt + (this.o.payWindowMs ?? DEFAULT_PAY_WINDOW_MS),
    });
    const sentAt = now();
    const reply = (
      remote
        ? await this.post(remote, '/obligations', { obligation: ob }).then((r) =>
            // the HTTP answer has no `accepted` flag: an acceptance or an error
            r === undefined ? undefined : { accepted: r.error === undefined && r.acceptance !== undefined, ...r },
          )
        : await this.exchange(`reply:${ob.id}`, () =>
            link.publish(this.topics.ingest(domain, deviceId, 'obligation'), { requestId: ob.id, obligation: ob }, 1),
          )
    ) as { accepted?: boolean; acceptance?: Signed<AcceptanceBody>; error?: DeviceError } | undefined;
    return { ob, reply, sentAt };
  }

  /**
   * Ask the back-end for this device's chain head and adopt it when it is a
   * link this device signed: the named obligation hashes to the head id, is
   * this device's, at the head's seq, and its signature verifies with the
   * device's own key (from its credential). Never moves the chain back.
   * True when the chain head changed.
   */
  async resync(): Promise<boolean> {
    const base = this.o.backendApi;
    if (base === undefined) return false;
    const { domain, deviceId } = this.o;
    let answer: { seq?: unknown; id?: unknown; obligation?: Obligation };
    try {
      const res = await fetch(`${base}/domains/${encodeURIComponent(domain)}/devices/${encodeURIComponent(deviceId)}/head`, {
        signal: AbortSignal.timeout(this.o.timeoutMs ?? 5000),
      });
      if (res.status !== 200) return false;
      answer = (await res.json()) as typeof answer;
    } catch {
      return false;
    }
    return this.adopt(answer);
  }

  /**
   * Adopt `answer` (a chain head from a hub: `{seq, id, obligation}`) when it is ahead of this
   * device's and its obligation is this device's link at that seq and id, signed with its key.
   * True when the chain head changed.
   */
  async adopt(answer: unknown): Promise<boolean> {
    if (typeof answer !== 'object' || answer === null) return false;
    const local = await this.chain.load();
    const { seq, id, obligation: ob } = answer as { seq?: unknown; id?: unknown; obligation?: Obligation };
    if (typeof seq !== 'number' || typeof id !== 'string' || seq <= local.seq || !ob || typeof ob !== 'object') return false;
    if (!this.signedByMe(ob) || ob.id !== id || ob.body?.seq !== seq) return false;
    await this.chain.save({ seq, id });
    return true;
  }

  /** `ob` is an obligation of this device, its id the hash of its body, signed with this device's key. */
  private signedByMe(ob: Obligation): boolean {
    try {
      const body = ob.body;
      if (body.consumerDomain !== this.o.domain || body.consumerDevice !== this.o.deviceId) return false;
      const text = canonicalize(body);
      return sha256Hex(text) === ob.id && verifyBytes(this.current.body.deviceKey, text, ob.sig);
    } catch {
      return false;
    }
  }

  /**
   * POST `body` to another hub's API: the answer's JSON (a typed error body
   * for a 4xx), or undefined when no answer came after the attempts. Network
   * failures and retry-class answers (5xx) are sent again unchanged, like a
   * lost MQTT message: the hub answers a duplicate with the same reply.
   */
  private async post(base: string, path: string, body: unknown): Promise<Record<string, unknown> & { error?: DeviceError } | undefined> {
    const attempts = this.o.attempts ?? 4;
    const timeout = this.o.timeoutMs ?? 5000;
    for (let i = 0; i < attempts; i++) {
      try {
        const res = await fetch(`${base}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(timeout * (i + 1)),
        });
        const parsed = (await res.json().catch(() => undefined)) as (Record<string, unknown> & { error?: DeviceError }) | undefined;
        if (res.status < 500 && parsed && typeof parsed === 'object') return parsed;
      } catch {
        // no answer: send again
      }
      await new Promise((r) => setTimeout(r, 100 * 2 ** i));
    }
    return undefined;
  }

  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
    await this.o.link.close();
  }
}

const err = (code: string, message: string): DeviceError => ({ code, class: 'final', message });

/** Signed by the provider domain: its key, or a hub key it certified (core/obligation.ts). */
function acceptedBy(acceptance: Signed<AcceptanceBody>, providerKey: PublicKeyRef): boolean {
  try {
    verifyAcceptanceSignature(acceptance, providerKey);
    return true;
  } catch {
    return false;
  }
}
const fail = (stage: 'offer' | 'accept', code: string, message: string, started: number, now: () => number): BuyResult => ({
  ok: false,
  stage,
  error: { code, class: code === 'TIMEOUT' ? 'retry' : 'final', message },
  latencyMs: now() - started,
});
