/**
 * Publication throughput to a real MultiChain node (issue 11, target ≥ 100
 * items/s): one node on loopback (test/real-nodes/harness.ts, 2 s blocks),
 * items shaped like accepted obligations (~1.7 KB of JSON, three keys each),
 * published through MultiChainLedger.publishBatch as the publish job sends them
 * (batches of 32, 2 in flight), with the adapter's default of as many items per
 * publishmultifrom transaction as the chain allows (its max-std-op-returns-count,
 * 32 on this default chain), every item checked "already ours?" first. The
 * row is ok only if `list` (what a follower reads) then hands back every item.
 * Runs only with OC_NODES_BIN; otherwise the row says skipped and why.
 */
import { MultiChainLedger } from '../adapters/ledger/multichain.ts';
import type { PublishEntry } from '../adapters/ports.ts';
import { MULTICHAIN_BINARIES, MultiChain, missingNodes } from '../test/real-nodes/harness.ts';
import type { BenchRow } from './types.ts';

const NAME = 'ledger items/s published to a real MultiChain';
const ITEMS = 2_000;
const BATCH = 32;
const PARALLEL = 2;

export async function benchLedger(): Promise<BenchRow[]> {
  const missing = missingNodes(MULTICHAIN_BINARIES);
  if (missing) return [{ name: NAME, value: 0, unit: `skipped: ${missing}`, target: '≥ 100 items/s' }];
  const chain = await MultiChain.start({ nodes: 1, streams: [] });
  try {
    const node = chain.node(0);
    const ledger = new MultiChainLedger({ url: node.url, user: node.endpoint.username, password: node.endpoint.password, chainName: chain.name });
    await ledger.ensureStreams();
    const pad = 'x'.repeat(1_500);
    const entries: PublishEntry[] = Array.from({ length: ITEMS }, (_, i) => ({
      id: `${i}`.padStart(64, 'b'),
      keys: [`p:provider${i % 5}`, `c:consumer${i % 17}`],
      data: { kind: 'accepted', n: i, body: pad },
    }));
    const batches: PublishEntry[][] = [];
    for (let i = 0; i < entries.length; i += BATCH) batches.push(entries.slice(i, i + BATCH));
    let next = 0;
    let published = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next < batches.length) {
          const results = await ledger.publishBatch('obligations', batches[next++] as PublishEntry[]);
          published += results.filter((r) => !('error' in r) && !r.duplicate).length;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const perSecond = Math.round(published / seconds);
    const perTx = await ledger.itemsPerTransaction();
    const readBack = (await ledger.list('obligations')).length;
    return [
      {
        name: NAME,
        value: perSecond,
        unit: `items/s (${published} items of ~1.7 KB, up to ${perTx} items per publishmultifrom tx (the adapter default: the chain's max-std-op-returns-count), batches of ${BATCH}, ${PARALLEL} in flight, ${readBack} read back by list(), MultiChain 2.3.3 on loopback)`,
        target: '≥ 100 items/s',
        ok: perSecond >= 100 && published === ITEMS && readBack === ITEMS,
      },
    ];
  } finally {
    await chain.stop();
  }
}
