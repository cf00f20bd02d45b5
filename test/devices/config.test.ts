/** The device config (devices/config.ts) and the example files that document it. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { DeviceConfig, parseDeviceConfig } from '../../devices/config.ts';
import { UsageError } from '../../cli/args.ts';

const example = async (name: string): Promise<Record<string, unknown>> =>
  JSON.parse(await readFile(new URL(`../../devices/${name}`, import.meta.url), 'utf8')) as Record<string, unknown>;

describe('device config examples', () => {
  it('devices/example.device.json is a valid local SCD config (the embedded broker)', async () => {
    const cfg = parseDeviceConfig(await example('example.device.json'));
    assert.equal(cfg.role, 'scd');
    assert.equal(cfg.link.kind, 'local');
    assert.ok(cfg.buy && cfg.credentialPath);
  });

  it('devices/example.aws.device.json is a valid AWS IoT Core SCD config (MQTT5 + mTLS files)', async () => {
    const cfg = parseDeviceConfig(await example('example.aws.device.json'));
    assert.equal(cfg.link.kind, 'iot-core');
    assert.match(cfg.api, /execute-api\.[a-z0-9-]+\.amazonaws\.com/);
    assert.equal(cfg.link.kind === 'iot-core' && cfg.link.topicRoot, 'oc', 'the default stage\'s topic root when none is given');
  });

  it('an IoT Core link takes its stage\'s topic root (the TopicRoot output), one topic level', async () => {
    const { $comment: _c, ...aws } = await example('example.aws.device.json');
    const cfg = parseDeviceConfig({ ...aws, link: { ...(aws.link as object), topicRoot: 'oc-orgb' } });
    assert.equal(cfg.link.kind === 'iot-core' && cfg.link.topicRoot, 'oc-orgb');
    for (const bad of ['oc/orgb', '+', '']) {
      assert.throws(() => parseDeviceConfig({ ...aws, link: { ...(aws.link as object), topicRoot: bad } }, 'x.json'), (e: unknown) => e instanceof UsageError && /link\.topicRoot/.test(e.message));
    }
  });

  it("an IoT Core link takes its stage's topic rules for Basic Ingest (the IngestRules output): rule names only", async () => {
    const { $comment: _c, ...aws } = await example('example.aws.device.json');
    const plain = parseDeviceConfig(aws);
    assert.equal(plain.link.kind === 'iot-core' && plain.link.ingestRules, undefined, 'absent: derived from the topic root (service/topics.ts: ingestRules)');
    const rules = { request: 'oc_orgb_request', obligation: 'oc_orgb_obligation' };
    const cfg = parseDeviceConfig({ ...aws, link: { ...(aws.link as object), topicRoot: 'oc-orgb', ingestRules: rules } });
    assert.deepEqual(cfg.link.kind === 'iot-core' && cfg.link.ingestRules, rules);
    for (const bad of [{ ...rules, request: 'oc-orgb-request' }, { ...rules, obligation: 'a/b' }, { request: 'oc_request' }, { ...rules, delivered: 'x' }]) {
      assert.throws(() => parseDeviceConfig({ ...aws, link: { ...(aws.link as object), ingestRules: bad } }, 'x.json'), (e: unknown) => e instanceof UsageError && /link\.ingestRules/.test(e.message), JSON.stringify(bad));
    }
  });

  it('devices/example.spd.device.json is a valid local SPD config', async () => {
    const cfg = parseDeviceConfig(await example('example.spd.device.json'));
    assert.equal(cfg.role, 'spd');
  });
});

describe('device config rules', () => {
  const base = async () => {
    const { $comment: _c, ...rest } = await example('example.device.json');
    return rest;
  };
  const refused = (value: unknown, why: RegExp) => {
    assert.throws(() => parseDeviceConfig(value, 'x.json'), (e: unknown) => e instanceof UsageError && why.test(e.message) && !e.message.includes('\n'));
  };

  it('names an unknown key instead of dropping it (the old doc put privateKeyPath in link)', async () => {
    const b = await base();
    refused({ ...b, link: { ...(b.link as object), privateKeyPath: 'k.json' } }, /link: Unrecognized key: "privateKeyPath"/);
    refused({ ...b, privateKeyPath: 'k.json' }, /Unrecognized key: "privateKeyPath"/);
  });

  it('an scd needs credentialPath and buy; an spd does not', async () => {
    const { buy: _b, ...noBuy } = await base();
    refused(noBuy, /an scd needs credentialPath and buy/);
    assert.equal(DeviceConfig.safeParse({ ...noBuy, role: 'spd' }).success, true);
  });

  it('checks ports, names and the API URL', async () => {
    const b = await base();
    refused({ ...b, link: { kind: 'local', port: 70000 } }, /link\.port/);
    refused({ ...b, link: { kind: 'local', port: '1883' } }, /link\.port/);
    refused({ ...b, thing: 'bad thing' }, /thing: an IoT thing name/);
    refused({ ...b, api: 'ftp://x' }, /api/);
    refused({ ...b, link: { kind: 'mqtt', port: 1 } }, /link/);
  });
});
