/**
 * Helpers shared by the fault and abuse suites: raw HTTP calls, a snapshot of
 * everything a refused request must leave untouched, real SDK device links,
 * and bounded polling (no timed assertions: a wait only bounds how long we
 * look for a state, the assertion is on the state).
 */
import assert from 'node:assert/strict';
import type { LocalCloud } from '../../local/cloud.ts';
import { createLink, type DeviceLink } from '../../devices/link.ts';
import type { TestDevice } from '../integration/support.ts';
import type { IncomingPayment } from '../../adapters/ports.ts';

export interface ErrorBody {
  error?: { code: string; class: string; message: string };
  message?: string;
}

/** POST a raw text body (not JSON-encoded by us), as a hostile client would. */
export async function rawPost(cloud: LocalCloud, path: string, text: string, contentType = 'application/json') {
  const res = await fetch(`${cloud.api}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body: text });
  const body = await res.text();
  let json: ErrorBody | undefined;
  try {
    json = JSON.parse(body) as ErrorBody;
  } catch {
    json = undefined;
  }
  return { status: res.status, body: json };
}

/** The class a code's letter stands for (core/errors.ts: F final, T temporary, R retry). */
export const classOf = (code: string): string =>
  code.startsWith('F') || code.startsWith('HTTP_') ? 'final' : code.startsWith('T') ? 'temporary' : 'retry';

/** A typed client error: 4xx with error.code (and the class matching the code when `code` is given). */
export function assertTypedRefusal(res: { status: number; body: unknown }, code?: string | RegExp): void {
  const e = (res.body as ErrorBody | undefined)?.error;
  assert.ok(res.status >= 400 && res.status < 500, `expected a 4xx, got ${res.status} ${JSON.stringify(res.body)}`);
  assert.ok(e && typeof e.code === 'string' && e.code.length > 0, `typed error expected: ${JSON.stringify(res.body)}`);
  if (typeof code === 'string') assert.equal(e.code, code, JSON.stringify(res.body));
  else if (code) assert.match(e.code, code);
  assert.equal(e.class, classOf(e.code), `class of ${e.code}`);
}

export interface Snapshot {
  byConsumer: Record<string, number>;
  byProvider: Record<string, number>;
  counters: Record<string, { outstanding: number; paidVolume: number; rScaled: number; sScaled: number }>;
  pending: number;
}

/** What a refused request must not change: stored obligations per side, counters, the publication queue. */
export async function snapshot(cloud: LocalCloud, consumers: string[], providers: string[]): Promise<Snapshot> {
  const s: Snapshot = { byConsumer: {}, byProvider: {}, counters: {}, pending: 0 };
  for (const d of consumers) {
    s.byConsumer[d] = (await cloud.deps.store.listByConsumer(d)).length;
    const c = await cloud.deps.store.getCounters(d);
    s.counters[d] = { outstanding: c.outstanding, paidVolume: c.paidVolume, rScaled: c.rScaled, sScaled: c.sScaled };
  }
  for (const d of providers) s.byProvider[d] = (await cloud.deps.store.listByProvider(d)).length;
  s.pending = (await cloud.deps.store.listPendingPublication(10_000)).length;
  return s;
}

/** Poll `probe` until it returns a value (not undefined), at most `tries` × `everyMs`. */
export async function eventually<T>(probe: () => Promise<T | undefined> | T | undefined, tries = 200, everyMs = 25): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`condition not reached after ${tries} tries`);
}

/** A real SDK MQTT link for an enrolled test device (thing already registered by enrol()). */
export function linkFor(cloud: LocalCloud, dev: TestDevice): DeviceLink {
  return createLink({ kind: 'local', host: '127.0.0.1', port: cloud.broker.port, thing: dev.id, privateKey: dev.keys.privateKey });
}

/** Payments received on a hosted provider's payTo address, as its own wallet reports them. */
export async function receivedBy(cloud: LocalCloud, provider: string): Promise<IncomingPayment[]> {
  const hosted = await cloud.deps.store.getHostedDomain(provider);
  assert.ok(hosted?.payTo, `${provider} has an address`);
  const wallet = await cloud.deps.payments(hosted.wallet);
  const got = await wallet.receivedSince(undefined);
  return got.payments.filter((p) => p.address === hosted.payTo);
}
