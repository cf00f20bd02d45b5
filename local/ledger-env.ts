/**
 * Which ledger `npm start` uses: the embedded one by default, or a real
 * MultiChain node given by `--multichain URL` or by the caller's environment
 * (LEDGER_KIND=multichain with MULTICHAIN_RPC_URL, MULTICHAIN_CHAIN_NAME,
 * MULTICHAIN_RPC_USER, MULTICHAIN_RPC_PASSWORD, optionally MULTICHAIN_PUBLISHER).
 * The result is passed as startCloud's `env`, which wins over the embedded
 * cloud's defaults (before, the cloud set LEDGER_KIND=embedded over the
 * caller's environment, so a real node was silently ignored).
 *
 * URL form: http://USER:PASSWORD@HOST:PORT/CHAIN. The credentials and the
 * chain name may instead come from the environment variables above; the path
 * is not part of the RPC endpoint (multichaind answers JSON-RPC at /).
 */
const KEYS = ['MULTICHAIN_RPC_URL', 'MULTICHAIN_CHAIN_NAME', 'MULTICHAIN_RPC_USER', 'MULTICHAIN_RPC_PASSWORD', 'MULTICHAIN_PUBLISHER'] as const;

export function multichainLedgerEnv(flag: string | undefined, environment: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const fromEnv: Record<string, string> = {};
  for (const k of KEYS) {
    const v = environment[k];
    if (v) fromEnv[k] = v;
  }
  if (flag === undefined) {
    if (environment.LEDGER_KIND !== 'multichain') return {};
    if (!fromEnv.MULTICHAIN_RPC_URL) throw new Error('LEDGER_KIND=multichain needs MULTICHAIN_RPC_URL');
    return { LEDGER_KIND: 'multichain', ...fromEnv, ...fromUrl(fromEnv.MULTICHAIN_RPC_URL, 'MULTICHAIN_RPC_URL', fromEnv) };
  }
  return { LEDGER_KIND: 'multichain', ...fromEnv, ...fromUrl(flag, '--multichain', fromEnv) };
}

function fromUrl(raw: string, what: string, env: Record<string, string>): Record<string, string> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`${what} must be a URL like http://user:password@127.0.0.1:8570/chain (got ${raw})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${what} must be an http(s) URL (got ${url.protocol})`);
  const chain = decodeURIComponent(url.pathname.replace(/^\/+|\/+$/g, '')) || env.MULTICHAIN_CHAIN_NAME;
  const user = decodeURIComponent(url.username) || env.MULTICHAIN_RPC_USER;
  const password = decodeURIComponent(url.password) || env.MULTICHAIN_RPC_PASSWORD;
  if (!chain) throw new Error(`${what}: no chain name (give it as the URL path or MULTICHAIN_CHAIN_NAME)`);
  if (!user || !password) throw new Error(`${what}: no RPC credentials (give them in the URL or MULTICHAIN_RPC_USER and MULTICHAIN_RPC_PASSWORD)`);
  return {
    MULTICHAIN_RPC_URL: `${url.protocol}//${url.host}/`,
    MULTICHAIN_CHAIN_NAME: chain,
    MULTICHAIN_RPC_USER: user,
    MULTICHAIN_RPC_PASSWORD: password,
  };
}
