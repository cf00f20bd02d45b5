/**
 * Run one device: `npm run device -- <config.json>`.
 *
 * The config file says who the device is and where it connects:
 * {
 *   "role": "scd" | "spd",
 *   "domain": "c1", "thing": "c1-scd-1",
 *   "api": "https://…/",                          // HTTP API (provider domain keys)
 *   "link": { "kind": "iot-core", "endpoint": "xxxx-ats.iot.eu-west-1.amazonaws.com",
 *             "certPath": ".fleet/c1-scd-1/cert.pem", "keyPath": ".fleet/c1-scd-1/private.key" }
 *        or { "kind": "local", "host": "127.0.0.1", "port": 1883, "privateKeyPath": "…/device.key.json" },
 *   "devicePrivateKeyPath": ".fleet/c1-scd-1/device.key.json",  // signing key (PKCS8, as core/keys.ts writes it)
 *   "credentialPath": ".fleet/c1-scd-1/credential.json",        // from POST /domains/{d}/devices
 *   "chainPath": ".fleet/c1-scd-1/chain.json",                  // where the SCD keeps its chain head
 *   "buy": { "providerDomain": "p1", "providerDevice": "p1-spd-1", "service": "wifi-access", "every": 5000, "count": 10,
 *            "payWindowMs": 900000 }   // optional: dueBy − issuedAt, at least the provider's minimum term
 * }
 * Keys stay on the device: the private key files are read here and never sent.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { PrivateKeyRef } from '../core/keys.ts';
import { parseCredential } from '../core/records.ts';
import type { PublicKeyRef } from '../core/types.ts';
import { createLink, type LinkConfig } from './link.ts';
import { ConsumerDevice, FileChainStore } from './scd.ts';
import { ProviderDevice } from './spd.ts';

const Key = z.object({ alg: z.enum(['ed25519', 'p256']), pkcs8: z.string() });

const Config = z.object({
  role: z.enum(['scd', 'spd']),
  domain: z.string(),
  thing: z.string(),
  api: z.string().url(),
  link: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('iot-core'), endpoint: z.string(), certPath: z.string(), keyPath: z.string() }),
    z.object({ kind: z.literal('local'), host: z.string().default('127.0.0.1'), port: z.number().int() }),
  ]),
  devicePrivateKeyPath: z.string(),
  credentialPath: z.string().optional(),
  chainPath: z.string().optional(),
  buy: z
    .object({
      providerDomain: z.string(),
      providerDevice: z.string(),
      service: z.string(),
      every: z.number().int().positive().default(5_000),
      count: z.number().int().positive().default(10),
      /** dueBy − issuedAt of each obligation, ms (default DEFAULT_PAY_WINDOW_MS, 15 minutes). */
      payWindowMs: z.number().int().positive().optional(),
    })
    .optional(),
});

async function json(path: string): Promise<unknown> {
  return JSON.parse(await readFile(path, 'utf8')) as unknown;
}

/** A provider device keeps running after main() returns (it waits for grants). */
let isProvider = false;

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error('usage: npm run device -- <config.json> (see devices/main.ts for the format)');
  const cfg = Config.parse(await json(file));
  const privateKey: PrivateKeyRef = Key.parse(await json(cfg.devicePrivateKeyPath));
  const linkCfg: LinkConfig =
    cfg.link.kind === 'local'
      ? { kind: 'local', host: cfg.link.host, port: cfg.link.port, thing: cfg.thing, privateKey }
      : { kind: 'iot-core', endpoint: cfg.link.endpoint, thing: cfg.thing, certPath: cfg.link.certPath, keyPath: cfg.link.keyPath };
  const link = createLink(linkCfg);

  isProvider = cfg.role === 'spd';
  if (cfg.role === 'spd') {
    const spd = new ProviderDevice(cfg.domain, cfg.thing, link);
    spd.onGrant((g) => console.log(`granted ${g.service} to ${g.consumer} for ${g.amount} sats (obligation ${g.obligationId.slice(0, 12)}…)`));
    await spd.start();
    console.log(`${cfg.thing}: waiting for grants (Ctrl-C to stop)`);
    process.once('SIGINT', () => void spd.close().then(() => process.exit(0)));
    return;
  }

  if (!cfg.credentialPath || !cfg.buy) throw new Error('an scd needs credentialPath and buy in its config');
  const credential = parseCredential(await json(cfg.credentialPath));
  const keys = new Map<string, PublicKeyRef>();
  const scd = new ConsumerDevice({
    domain: cfg.domain,
    deviceId: cfg.thing,
    privateKey,
    credential,
    link,
    chain: new FileChainStore(cfg.chainPath ?? `${cfg.thing}.chain.json`),
    // its hub's API, where it asks for its chain head after a replay or broken link
    backendApi: cfg.api.replace(/\/+$/, ''),
    ...(cfg.buy.payWindowMs === undefined ? {} : { payWindowMs: cfg.buy.payWindowMs }),
    providerKey: async (d) => {
      const hit = keys.get(d);
      if (hit) return hit;
      const res = await fetch(new URL(`domains/${d}`, cfg.api.endsWith('/') ? cfg.api : `${cfg.api}/`));
      if (!res.ok) throw new Error(`cannot read the record of ${d}: HTTP ${res.status}`);
      const key = ((await res.json()) as { record: { body: { key: PublicKeyRef } } }).record.body.key;
      keys.set(d, key);
      return key;
    },
  });
  await scd.start();
  const { providerDomain, providerDevice, service, every, count } = cfg.buy;
  for (let i = 1; i <= count; i++) {
    const r = await scd.buy(providerDomain, providerDevice, service);
    console.log(
      r.ok
        ? `#${i} accepted: ${r.amount} sats, obligation ${r.obligationId.slice(0, 12)}… (seq ${r.seq}, ${r.acceptMs} ms)`
        : `#${i} refused at ${r.stage}: ${r.error.code} — ${r.error.message}`,
    );
    if (i < count) await new Promise((res) => setTimeout(res, every));
  }
  await scd.close();
}

main()
  .then(() => {
    // aws-crt can keep the process alive after an MQTT5 client closes (aws-crt-nodejs #600): an SCD that is done exits
    if (!isProvider) process.exit(process.exitCode ?? 0);
  })
  .catch((e: unknown) => {
    console.error(`device failed: ${(e as Error).message}`);
    process.exit(1);
  });
