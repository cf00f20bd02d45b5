/** The handler layer's shared parts: configuration from the environment and the one error mapper. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  BadSignatureError,
  ForbiddenError,
  MalformedError,
  NotFoundError,
  OverCreditError,
  ReplayError,
  ReputationTooLowError,
  UnavailableError,
} from '../../core/errors.ts';
import { loadConfig } from '../../functions/shared/config.ts';
import { RETRY_MESSAGE, toReply } from '../../functions/shared/errors.ts';

const base = { TABLE_NAME: 't', BITCOIN_RPC_URL: 'http://127.0.0.1:18443' };

describe('loadConfig', () => {
  it('reads a MultiChain deployment with its publishing address and defaults', () => {
    const c = loadConfig({ ...base, MULTICHAIN_RPC_URL: 'http://multichain.oc.internal:8570', MULTICHAIN_PUBLISHER: '1Abc' });
    assert.equal(c.ledger.kind, 'multichain');
    assert.equal(c.ledger.kind === 'multichain' ? c.ledger.publisher : undefined, '1Abc');
    assert.equal(c.confirmations, 1);
    assert.equal(c.bitcoin.walletUrl, base.BITCOIN_RPC_URL);
    assert.equal(c.logJobs, true);
  });

  it('TOPIC_ROOT (the stage\'s MQTT topic root) defaults to oc and is one topic level, or refused naming the variable', () => {
    const env = { ...base, MULTICHAIN_RPC_URL: 'http://m:8570' };
    assert.equal(loadConfig(env).topicRoot, 'oc');
    assert.equal(loadConfig({ ...env, TOPIC_ROOT: 'oc-orgb' }).topicRoot, 'oc-orgb');
    for (const bad of ['oc/orgb', 'oc+', '#', '']) assert.throws(() => loadConfig({ ...env, TOPIC_ROOT: bad }), /TOPIC_ROOT/, bad);
  });

  it('MULTICHAIN_P2P_ENDPOINT (what GET /chain shows other organisations) is host:port, or refused naming the variable', () => {
    const c = loadConfig({ ...base, MULTICHAIN_RPC_URL: 'http://multichain.oc.internal:8570', MULTICHAIN_P2P_ENDPOINT: 'oc-a-nlb.elb.amazonaws.com:8571' });
    assert.equal(c.ledger.kind === 'multichain' ? c.ledger.p2pEndpoint : undefined, 'oc-a-nlb.elb.amazonaws.com:8571');
    for (const bad of ['oc-a-nlb.elb.amazonaws.com', 'http://a.example:8571', 'a b:8571']) {
      assert.throws(() => loadConfig({ ...base, MULTICHAIN_RPC_URL: 'http://m:8570', MULTICHAIN_P2P_ENDPOINT: bad }), /MULTICHAIN_P2P_ENDPOINT/, bad);
    }
  });

  it('parses numbers from strings', () => {
    const c = loadConfig({ ...base, LEDGER_KIND: 'embedded', CONFIRMATIONS: '3', CREDIT_BASE: '123' });
    assert.equal(c.confirmations, 3);
    assert.equal(c.credit.base, 123);
  });

  it('names every missing or bad variable', () => {
    assert.throws(() => loadConfig({ CONFIRMATIONS: 'many' }), (e: Error) => {
      assert.match(e.message, /TABLE_NAME/);
      assert.match(e.message, /BITCOIN_RPC_URL/);
      assert.match(e.message, /CONFIRMATIONS/);
      return true;
    });
  });

  it('per-network defaults: confirmations 1 / 3 / 3 / 6 and each network\'s fee policy; explicit values win', () => {
    const of = (network: string, extra: Record<string, string> = {}) =>
      loadConfig({ ...base, LEDGER_KIND: 'embedded', BITCOIN_NETWORK: network, ...extra });
    assert.deepEqual(['regtest', 'signet', 'testnet4', 'mainnet'].map((n) => of(n).confirmations), [1, 3, 3, 6]);
    assert.equal(loadConfig({ ...base, LEDGER_KIND: 'embedded' }).bitcoin.network, 'regtest');
    assert.equal(of('mainnet', { CONFIRMATIONS: '2' }).confirmations, 2);
    assert.deepEqual(of('mainnet').bitcoin.fees, { targetBlocks: 6, floorSatVb: 1, capSatVb: 200, fallbackSatVb: 10 });
    assert.equal(of('signet', { FEE_CAP_SAT_VB: '30', FEE_TARGET_BLOCKS: '2' }).bitcoin.fees.capSatVb, 30);
    assert.equal(of('signet', { FEE_TARGET_BLOCKS: '2' }).bitcoin.fees.targetBlocks, 2);
  });

  it('refuses an unknown network, bcoin off regtest, and fee bounds out of order', () => {
    const embedded = { ...base, LEDGER_KIND: 'embedded' };
    assert.throws(() => loadConfig({ ...embedded, BITCOIN_NETWORK: 'testnet3' }), /BITCOIN_NETWORK/);
    assert.throws(() => loadConfig({ ...embedded, BITCOIN_KIND: 'bcoin', BITCOIN_NETWORK: 'mainnet' }), /regtest only/);
    assert.throws(() => loadConfig({ ...embedded, FEE_FLOOR_SAT_VB: '30' }), /FEE_FLOOR_SAT_VB \(30\) <= FEE_FALLBACK_SAT_VB/);
    assert.throws(() => loadConfig({ ...embedded, BITCOIN_NETWORK: 'mainnet', FEE_CAP_SAT_VB: '5' }), /<= FEE_CAP_SAT_VB \(5\)/);
  });

  it('refuses a MultiChain ledger without its URL', () => {
    assert.throws(() => loadConfig(base), /MULTICHAIN_RPC_URL is required/);
  });
});

describe('toReply: typed errors to HTTP in one place', () => {
  const cases: [Error, number, string][] = [
    [new MalformedError('m'), 400, 'F00_MALFORMED'],
    [new BadSignatureError('s'), 400, 'F01_BAD_SIGNATURE'],
    [new ReplayError('r'), 409, 'F04_REPLAY'],
    [new ForbiddenError('f'), 403, 'F08_FORBIDDEN'],
    [new NotFoundError('n'), 404, 'F09_NOT_FOUND'],
    [new ReputationTooLowError('low'), 403, 'T01_REPUTATION_TOO_LOW'],
    [new OverCreditError('over'), 402, 'T02_OVER_CREDIT'],
    [new UnavailableError('down'), 503, 'R01_UNAVAILABLE'],
  ];
  for (const [error, status, code] of cases) {
    it(`${code} → ${status}`, () => {
      const r = toReply(error, () => undefined);
      assert.equal(r.statusCode, status);
      assert.equal(r.body.error.code, code);
    });
  }

  it('a retry-class error tells the caller when to retry', () => {
    assert.equal(toReply(new UnavailableError('down'), () => undefined).headers?.['retry-after'], '1');
  });

  it('a 503 names neither hosts nor ARNs: code and a generic message for the caller, the details in the log', () => {
    const secret = 'connect ECONNREFUSED 10.0.3.7:8570 arn:aws:iot:eu-west-1:123456789012:topic/oc/x';
    let logged: unknown;
    const r = toReply(new UnavailableError(`ledger unavailable: ${secret}`, { cause: secret }), (_m, e) => (logged = e));
    assert.equal(r.statusCode, 503);
    assert.equal(r.body.error.code, 'R01_UNAVAILABLE');
    assert.equal(r.body.error.class, 'retry');
    assert.equal(r.body.error.message, RETRY_MESSAGE);
    assert.equal(r.body.error.details, undefined);
    assert.doesNotMatch(JSON.stringify(r), /10\.0\.3\.7|arn:aws|ECONNREFUSED/);
    assert.ok(logged instanceof UnavailableError && logged.message.includes('10.0.3.7'), 'the log keeps the details');
  });

  it('a final error keeps its message and details (the caller must fix the request)', () => {
    const r = toReply(new MalformedError('body.obligation: required', { issues: [{ path: 'obligation' }] }), () => undefined);
    assert.equal(r.body.error.message, 'body.obligation: required');
    assert.deepEqual(r.body.error.details, { issues: [{ path: 'obligation' }] });
  });

  it('keeps the status of another 4xx HTTP error (typed HTTP_4xx, class final)', () => {
    const e = Object.assign(new Error('Unsupported Media Type'), { statusCode: 415, expose: true });
    assert.equal(toReply(e, () => undefined).statusCode, 415);
  });

  it('never serialises an unexpected error, and logs it', () => {
    let logged: unknown;
    const r = toReply(new TypeError('secret path /etc/keys'), (_m, e) => (logged = e));
    assert.equal(r.statusCode, 500);
    assert.equal(r.body.error.message, 'Internal Server Error');
    assert.ok(!JSON.stringify(r).includes('secret'));
    assert.ok(logged instanceof TypeError);
  });
});
