import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { multichainLedgerEnv } from '../../local/ledger-env.ts';

describe('npm start: which ledger (local/ledger-env.ts)', () => {
  it('the embedded ledger unless asked otherwise', () => {
    assert.deepEqual(multichainLedgerEnv(undefined, {}), {});
    assert.deepEqual(multichainLedgerEnv(undefined, { MULTICHAIN_RPC_URL: 'http://h:1/' }), {}, 'LEDGER_KIND decides');
  });

  it('--multichain URL: endpoint, credentials and chain from the URL; the path is not the RPC endpoint', () => {
    assert.deepEqual(multichainLedgerEnv('http://oc:s%40cret@127.0.0.1:8570/oc-chain', {}), {
      LEDGER_KIND: 'multichain',
      MULTICHAIN_RPC_URL: 'http://127.0.0.1:8570/',
      MULTICHAIN_CHAIN_NAME: 'oc-chain',
      MULTICHAIN_RPC_USER: 'oc',
      MULTICHAIN_RPC_PASSWORD: 's@cret',
    });
  });

  it('the environment fills what the URL leaves out, and LEDGER_KIND=multichain alone uses it', () => {
    const env = { MULTICHAIN_CHAIN_NAME: 'c1', MULTICHAIN_RPC_USER: 'u', MULTICHAIN_RPC_PASSWORD: 'p', MULTICHAIN_PUBLISHER: '1Abc' };
    assert.deepEqual(multichainLedgerEnv('http://10.0.0.5:8570', env), { LEDGER_KIND: 'multichain', MULTICHAIN_RPC_URL: 'http://10.0.0.5:8570/', ...env });
    assert.deepEqual(multichainLedgerEnv(undefined, { LEDGER_KIND: 'multichain', MULTICHAIN_RPC_URL: 'http://10.0.0.5:8570/', ...env }), {
      LEDGER_KIND: 'multichain',
      MULTICHAIN_RPC_URL: 'http://10.0.0.5:8570/',
      ...env,
    });
  });

  it('refuses what cannot work, in one line', () => {
    for (const [flag, env, msg] of [
      ['not a url', {}, /must be a URL/],
      ['ftp://u:p@h:1/c', {}, /http\(s\)/],
      ['http://u:p@h:1/', {}, /no chain name/],
      ['http://h:1/c', {}, /no RPC credentials/],
      [undefined, { LEDGER_KIND: 'multichain' }, /needs MULTICHAIN_RPC_URL/],
    ] as const) {
      assert.throws(() => multichainLedgerEnv(flag, env), (e: unknown) => e instanceof Error && msg.test(e.message) && !e.message.includes('\n'));
    }
  });
});
