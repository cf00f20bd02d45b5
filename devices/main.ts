/**
 * Run one device: `npm run device -- <config.json>`. The file's format is in
 * devices/config.ts; devices/example.device.json (the embedded cloud of
 * `npm start -- --serve`) and devices/example.aws.device.json (AWS IoT Core)
 * are examples. An SCD buys `buy.count` times and exits; an SPD waits for
 * grants until Ctrl-C. An SCD renews its credential through its hub's API
 * (`api`) and saves the renewed one over `credentialPath`.
 *
 * Exit codes: 0 done (an SCD whose every purchase was accepted), 1 a purchase
 * was refused or the device failed (one line naming the cause, e.g. the
 * broker's `AWS_ERROR_MQTT_PROTOCOL_ERROR` when it refuses the thing), 2 a
 * mistake in the command line or in the files it names.
 */
import { access } from 'node:fs/promises';
import { writeFileAtomic } from './atomic-file.ts';
import { publicKeyOf } from '../core/keys.ts';
import type { PublicKeyRef } from '../core/types.ts';
import { describeError, isMain, onInterrupt, parse, runCli, UsageError, type CommandSpec } from '../cli/args.ts';
import { firstIssue, loadDeviceConfig, PrivateKeyFile, readJsonFile, type DeviceConfig } from './config.ts';
import type { DeviceLink, LinkConfig } from './link.ts';

export const DEVICE: CommandSpec<{ count: { type: 'int'; min: 1; max: 1_000_000; arg: 'N'; help: string } }> = {
  name: 'npm run device',
  usage: '-- <config.json> [--count N]',
  summary: 'Run one device (an SCD that buys, or an SPD that is granted) with its SDK MQTT link.',
  positionals: { min: 1, max: 1, help: '  <config.json>      the device config (format: devices/config.ts; examples: devices/example*.device.json)' },
  options: { count: { type: 'int', min: 1, max: 1_000_000, arg: 'N', help: 'SCD: purchases to make (overrides buy.count)' } },
  epilog: `walkthrough against \`npm start -- --serve --port 8080 --mqtt-port 1883\`: docs/devices.md`,
};

async function privateKey(path: string) {
  const r = PrivateKeyFile.safeParse(await readJsonFile(path, 'device key'));
  if (!r.success) throw new UsageError(`device key ${path}: ${firstIssue(r.error)} (write one with npm run device:keygen)`);
  try {
    publicKeyOf(r.data); // the key itself parses, and is of its alg
  } catch (e) {
    throw new UsageError(`device key ${path}: ${describeError(e)} (write one with npm run device:keygen)`);
  }
  return r.data;
}

/** The link's connect(), with a failure that names the broker and the cause. */
async function connect(start: () => Promise<void>, cfg: DeviceConfig): Promise<void> {
  try {
    await start();
  } catch (e) {
    const where = cfg.link.kind === 'local' ? `${cfg.link.host}:${cfg.link.port}` : cfg.link.endpoint;
    const err = e as { message?: string; error_name?: string };
    const cause = [err.error_name, err.message].filter((x) => x && x !== 'undefined').filter((x, i, a) => a.indexOf(x) === i).join(': ') || String(e);
    const hint = /PROTOCOL_ERROR|NOT_AUTHORIZED|BAD_USERNAME/.test(cause)
      ? ` — the broker refused thing ${cfg.thing}: is it enrolled (npm run admin -- enrol) and is devicePrivateKeyPath its enrolled key?`
      : /CONNECTION_REFUSED|ECONNREFUSED|SOCKET_TIMEOUT|TIMEOUT/.test(cause)
        ? ' — is the broker running at that address?'
        : '';
    throw new Error(`${cfg.thing} cannot connect to ${where}: ${cause}${hint}`, { cause: e });
  }
}

async function main(): Promise<number> {
  const { values, positionals, help } = parse(DEVICE, process.argv.slice(2));
  if (help) return 0;
  const file = positionals[0]!;
  const cfg = await loadDeviceConfig(file);
  const key = await privateKey(cfg.devicePrivateKeyPath);
  if (cfg.link.kind === 'iot-core') {
    for (const [what, p] of [['certPath', cfg.link.certPath], ['keyPath', cfg.link.keyPath], ...(cfg.link.caPath ? [['caPath', cfg.link.caPath]] : [])] as const) {
      await access(p).catch(() => {
        throw new UsageError(`device config ${file}: link.${what} ${p}: no such file (scripts/provision-fleet.sh writes them)`);
      });
    }
  }
  // the SDK (aws-crt) loads once the files are known good
  const [{ createLink }, { ConsumerDevice, FileChainStore }, { ProviderDevice }, { parseCredential }] = await Promise.all([
    import('./link.ts'),
    import('./scd.ts'),
    import('./spd.ts'),
    import('../core/records.ts'),
  ]);
  const linkCfg: LinkConfig =
    cfg.link.kind === 'local'
      ? { kind: 'local', host: cfg.link.host, port: cfg.link.port, thing: cfg.thing, privateKey: key }
      : {
          kind: 'iot-core',
          endpoint: cfg.link.endpoint,
          thing: cfg.thing,
          certPath: cfg.link.certPath,
          keyPath: cfg.link.keyPath,
          ...(cfg.link.port === undefined ? {} : { port: cfg.link.port }),
          ...(cfg.link.caPath === undefined ? {} : { caPath: cfg.link.caPath }),
        };
  let link: DeviceLink;
  try {
    link = createLink(linkCfg);
  } catch (e) {
    // aws-crt reads the certificate, key and CA files here: one that is not PEM (or not a file) is the config's mistake
    if (cfg.link.kind !== 'iot-core' || !/aws-c-|PEM|file|path|certificate|private key/i.test(describeError(e))) throw e;
    throw new UsageError(`device config ${file}: link.certPath, keyPath or caPath: cannot load them (${describeError(e)})`);
  }
  const topicRoot = cfg.link.kind === 'iot-core' ? cfg.link.topicRoot : undefined;
  // the rules it publishes to by Basic Ingest: default, the root's (service/topics.ts: ingestRules)
  const ingestRules = cfg.link.kind === 'iot-core' ? cfg.link.ingestRules : undefined;

  if (cfg.role === 'spd') {
    const spd = new ProviderDevice(cfg.domain, cfg.thing, link, topicRoot === undefined ? {} : { topicRoot });
    spd.onGrant((g) => console.log(`granted ${g.service} to ${g.consumer} for ${g.amount} sats (obligation ${g.obligationId.slice(0, 12)}…)`));
    onInterrupt(() => spd.close().catch(() => undefined), () => undefined);
    await connect(() => spd.start(), cfg);
    console.log(`${cfg.thing}: waiting for grants (Ctrl-C to stop)`);
    return new Promise<never>(() => undefined); // until Ctrl-C
  }

  // the schema guarantees both for an scd
  const buy = cfg.buy!;
  const credential = await readJsonFile(cfg.credentialPath!, 'credential').then((c) => {
    try {
      return parseCredential(c);
    } catch (e) {
      throw new UsageError(`credential ${cfg.credentialPath}: ${(e as Error).message}`);
    }
  });
  const api = cfg.api.endsWith('/') ? cfg.api : `${cfg.api}/`;
  const hub = cfg.api.replace(/\/+$/, '');
  const keys = new Map<string, PublicKeyRef>();
  const scd = new ConsumerDevice({
    domain: cfg.domain,
    deviceId: cfg.thing,
    privateKey: key,
    credential,
    link,
    ...(topicRoot === undefined ? {} : { topicRoot }),
    ...(ingestRules === undefined ? {} : { ingestRules }),
    chain: new FileChainStore(cfg.chainPath ?? `${cfg.thing}.chain.json`),
    // its hub's API, where it asks for its chain head after a replay or broken link, and renews its
    // credential: a third of its validity before it ends, or at once when a purchase is refused
    // F02_BAD_CREDENTIAL (its domain rotated its key); the renewed one is saved over credentialPath
    backendApi: hub,
    renewal: { api: hub },
    ...(buy.payWindowMs === undefined ? {} : { payWindowMs: buy.payWindowMs }),
    providerKey: async (d, fresh) => {
      const hit = keys.get(d);
      if (hit && !fresh) return hit;
      const res = await fetch(new URL(`domains/${encodeURIComponent(d)}`, api)).catch((e: unknown) => {
        throw new Error(`cannot reach the API at ${cfg.api}`, { cause: e });
      });
      if (!res.ok) throw new Error(`cannot read the record of domain ${d} at ${cfg.api}: HTTP ${res.status}`);
      const key = ((await res.json()) as { key: PublicKeyRef }).key;
      keys.set(d, key);
      return key;
    },
  });
  onInterrupt(() => scd.close().catch(() => undefined), () => undefined);
  await connect(() => scd.start(), cfg);
  const count = values.count ?? buy.count;
  let refused = 0;
  let saved = scd.credential;
  for (let i = 1; i <= count; i++) {
    const r = await scd.buy(buy.providerDomain, buy.providerDevice, buy.service);
    if (!r.ok) refused += 1;
    if (scd.credential !== saved) {
      saved = scd.credential;
      await writeFileAtomic(cfg.credentialPath!, `${JSON.stringify(saved)}\n`, 0o600);
      console.log(`credential renewed, valid until ${new Date(saved.body.notAfter).toISOString()} (saved to ${cfg.credentialPath})`);
    }
    console.log(
      r.ok
        ? `#${i} accepted: ${r.amount} sats, obligation ${r.obligationId.slice(0, 12)}… (seq ${r.seq}, ${r.acceptMs} ms)`
        : `#${i} refused at ${r.stage}: ${r.error.code} — ${r.error.message}`,
    );
    if (i < count) await new Promise((res) => setTimeout(res, buy.every));
  }
  await scd.close();
  return refused === 0 ? 0 : 1;
}

// aws-crt can keep the process alive after an MQTT client closes (aws-crt-nodejs #600): a device that is done exits
if (isMain(import.meta.url)) runCli('npm run device', main, { exit: true });
