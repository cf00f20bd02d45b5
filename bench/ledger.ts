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
import { startCloud } from '../local/cloud.ts';
import { publishPending, type PublishSummary } from '../service/publish.ts';
import { acceptMany, enrol, registerDomain, type TestDevice } from '../test/integration/support.ts';
import type { BenchRow } from './types.ts';

const NAME = 'ledger items/s published to a real MultiChain';
const ITEMS = 2_000;
const BATCH = 32;
const PARALLEL = 2;

export async function benchLedger(): Promise<BenchRow[]> {
  return [...(await benchAdapter()), ...(await benchPublishJob())];
}

async function benchAdapter(): Promise<BenchRow[]> {
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

const JOB_NAME = 'publish job: obligations/s drained to a real MultiChain in one run';
const JOB_OBLIGATIONS = 1_000;
const JOB_DEVICES = 8;

/**
 * The deployed path end to end: a hub on the embedded cloud (dynalite) whose
 * ledger is a real MultiChain node by configuration (LEDGER_KIND=multichain),
 * JOB_OBLIGATIONS accepted obligations waiting, then one publishPending run
 * with the job's defaults (pages of 200, batches of 32, PUBLISH_PARALLEL in
 * flight): read the queue, publish, mark each published in the store. Timed
 * from the run's start to its end; then again with one batch in flight. Before
 * this change the job published one page of 200 per scheduled run (one a minute).
 */
async function benchPublishJob(): Promise<BenchRow[]> {
  const missing = missingNodes(MULTICHAIN_BINARIES);
  if (missing) return [{ name: JOB_NAME, value: 0, unit: `skipped: ${missing}`, target: '≥ 100 items/s' }];
  const chain = await MultiChain.start({ nodes: 1, streams: [] });
  const node = chain.node(0);
  const cloud = await startCloud({
    schedule: { publish: 0, watch: 0, settle: 0, mine: 0, follow: 0 },
    env: { ...node.ledgerEnv, CREDIT_BASE: '1000000000' },
  });
  try {
    await registerDomain(cloud, 'bc', 'consumer');
    await registerDomain(cloud, 'bp', 'provider', { threshold: 0.3 });
    const devices: TestDevice[] = [];
    for (let d = 0; d < JOB_DEVICES; d++) devices.push(await enrol(cloud, 'bc', `bc-dev-${d}`, 1_000_000_000));
    const acceptAll = () => Promise.all(devices.map((dev) => acceptMany(cloud, dev, 'bp', 'bp-spd', JOB_OBLIGATIONS / JOB_DEVICES)));
    const timed = async (parallel?: number): Promise<{ run: PublishSummary; perSecond: number }> => {
      await acceptAll();
      const started = performance.now();
      const run = await publishPending(cloud.deps, parallel === undefined ? {} : { parallel });
      const perSecond = Math.round(run.published / ((performance.now() - started) / 1000));
      return { run, perSecond };
    };
    const parallel = cloud.deps.config.publishParallel;
    const many = await timed();
    const one = await timed(1);
    const complete = (run: PublishSummary) => run.published === JOB_OBLIGATIONS && run.duplicates === 0 && !run.deferred && run.backlog === 0;
    const conditions = (run: PublishSummary, inFlight: number) =>
      `obligations/s (${run.published} accepted obligations waiting, one run: ${run.pages} pages of ≤ 200 read from the store's pending index, batches of 32 per publishmultifrom tx, ${inFlight} in flight, each marked published in dynalite; MultiChain 2.3.3 on loopback, 2 s blocks)`;
    return [
      { name: JOB_NAME, value: many.perSecond, unit: conditions(many.run, parallel), target: '≥ 100 items/s', ok: many.perSecond >= 100 && complete(many.run) },
      {
        name: `${JOB_NAME}, one batch in flight`,
        value: one.perSecond,
        unit: conditions(one.run, 1),
        target: `the default (${parallel} in flight) is faster`,
        ok: complete(one.run) && many.perSecond > one.perSecond,
      },
    ];
  } finally {
    await cloud.stop();
    await chain.stop();
  }
}
