/**
 * The device configuration file of `npm run device -- <config.json>`: who the
 * device is and where it connects. Examples: devices/example.device.json (the
 * embedded cloud of `npm start -- --serve`) and devices/example.aws.device.json
 * (AWS IoT Core); test/devices/config.test.ts keeps them valid.
 *
 *   role                 "scd" (consumer device, buys) or "spd" (provider device, is granted)
 *   domain, thing        the device's domain and its IoT thing name (= MQTT client id = enrolled deviceId)
 *   api                  base URL of the hub's HTTP API (an SCD reads provider domains' keys there,
 *                          its chain head after a lost reply, and renews its credential there)
 *   link                 { "kind": "local", "host": "127.0.0.1", "port": 1883 }
 *                          the embedded broker; the device signs its connect token with devicePrivateKeyPath
 *                        { "kind": "iot-core", "endpoint": "xxxx-ats.iot.<region>.amazonaws.com",
 *                          "certPath": ".fleet/<thing>/cert.pem", "keyPath": ".fleet/<thing>/private.key",
 *                          "port"?: 8883, "caPath"?: "<CA PEM>",
 *                          "topicRoot"?: "oc", "ingestRules"?: { "request": "oc_request", "obligation": "oc_obligation" } }
 *                          MQTT5 + mTLS, files from scripts/provision-fleet.sh; topicRoot and ingestRules are
 *                          the IoT stack's TopicRoot and IngestRules outputs (default: the `dev` stage's; the
 *                          rules default to the ones derived from topicRoot, as the stack names them)
 *   devicePrivateKeyPath the obligation signing key (`npm run device:keygen -- <dir>` writes <dir>/device.key.json)
 *   credentialPath       SCD: the credential from enrolment (`npm run admin -- enrol … --out <file>`);
 *                          a renewed credential is written over it
 *   chainPath            SCD: where it keeps its chain head (default <thing>.chain.json)
 *   buy                  SCD: { providerDomain, providerDevice, service, every (ms, 5000), count (10), payWindowMs? }
 *   $comment             ignored (a place for notes in JSON)
 * Relative paths are read from the current directory. Unknown keys are refused
 * (a misspelt key is a mistake, not a default). Keys stay on the device: the
 * private key files are read here and never sent.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { DEFAULT_TOPIC_ROOT, RULE_NAME, TOPIC_ROOT } from '../service/topics.ts';
import { UsageError } from '../cli/args.ts';

const Name = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a name of 1-64 letters, digits, _ or -');
const Port = z.number().int().min(1).max(65_535);

export const LocalLinkConfig = z.strictObject({
  kind: z.literal('local'),
  host: z.string().min(1).default('127.0.0.1'),
  port: Port,
});

export const IotCoreLinkConfig = z.strictObject({
  kind: z.literal('iot-core'),
  endpoint: z.string().min(1),
  certPath: z.string().min(1),
  keyPath: z.string().min(1),
  port: Port.optional(),
  caPath: z.string().min(1).optional(),
  /** The stage's MQTT topic root (stack output `TopicRoot` of oc-<stage>-iot): `oc` for the default stage. */
  topicRoot: z.string().regex(TOPIC_ROOT, "one topic level of letters, digits, '-' or '_' (the TopicRoot output)").default(DEFAULT_TOPIC_ROOT),
  /** The stage's topic rules, which the device publishes to by Basic Ingest (stack output `IngestRules`); default: derived from topicRoot. */
  ingestRules: z
    .strictObject({
      request: z.string().regex(RULE_NAME, "an IoT rule name: letters, digits and '_' (the IngestRules output)"),
      obligation: z.string().regex(RULE_NAME, "an IoT rule name: letters, digits and '_' (the IngestRules output)"),
    })
    .optional(),
});

export const BuyConfig = z.strictObject({
  providerDomain: Name,
  providerDevice: Name,
  service: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'a service name'),
  every: z.number().int().nonnegative().default(5_000),
  count: z.number().int().positive().default(10),
  /** dueBy − issuedAt of each obligation, ms (default DEFAULT_PAY_WINDOW_MS, 15 minutes). */
  payWindowMs: z.number().int().positive().optional(),
});

export const DeviceConfig = z
  .strictObject({
    $comment: z.union([z.string(), z.array(z.string())]).optional(),
    role: z.enum(['scd', 'spd']),
    domain: Name,
    thing: z.string().regex(/^[a-zA-Z0-9:_-]{1,128}$/, 'an IoT thing name: letters, digits, :, _ or -'),
    api: z.url({ protocol: /^https?$/ }),
    link: z.discriminatedUnion('kind', [LocalLinkConfig, IotCoreLinkConfig]),
    devicePrivateKeyPath: z.string().min(1),
    credentialPath: z.string().min(1).optional(),
    chainPath: z.string().min(1).optional(),
    buy: BuyConfig.optional(),
  })
  .refine((c) => c.role === 'spd' || (c.credentialPath !== undefined && c.buy !== undefined), {
    message: 'an scd needs credentialPath and buy',
  });
export type DeviceConfig = z.infer<typeof DeviceConfig>;

export const PrivateKeyFile = z.strictObject({ alg: z.enum(['ed25519', 'p256']), pkcs8: z.string().min(1) });

/** A JSON file named by the user (directly or in the config): any problem is a UsageError naming the file. */
export async function readJsonFile(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read ${what} ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (code ?? (e as Error).message)}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new UsageError(`${what} ${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** The first problem of a zod result, as `path: message`, on one line. */
export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  const path = issue.path.join('.');
  return `${path ? `${path}: ` : ''}${issue.message}`;
}

export function parseDeviceConfig(value: unknown, file = 'config'): DeviceConfig {
  const r = DeviceConfig.safeParse(value);
  if (!r.success) throw new UsageError(`device config ${file}: ${firstIssue(r.error)} (format: devices/config.ts)`);
  return r.data;
}

export async function loadDeviceConfig(file: string): Promise<DeviceConfig> {
  return parseDeviceConfig(await readJsonFile(file, 'device config'), file);
}
