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
/** Runs of each setting (default in flight, one in flight). */
const JOB_ROUNDS = 3;

/**
 * The deployed path end to end: a hub on the embedded cloud (dynalite) whose
 * ledger is a real MultiChain node by configuration (LEDGER_KIND=multichain),
 * JOB_OBLIGATIONS accepted obligations waiting, then one publishPending run
 * with the job's defaults (pages of 200, batches of 32, PUBLISH_PARALLEL in
 * flight): read the queue, publish, mark each published in the store. Timed
 * from the run's start to its end; with one batch in flight in alternate runs
 * (JOB_ROUNDS of each, medians). Before
 * this change the job published one page of 200 per scheduled run (one a minute).
 */
async function benchPublishJob(): Promise<BenchRow[]> {
  const missing = missingNodes(MULTICHAIN_BINARIES);
  if (missing) return [{ name: JOB_NAME, value: 0, unit: `skipped: ${missing}`, target: '≥ 100 items/s' }];
  const chain = await MultiChain.start({ nodes: 1, streams: [] });
  const node = chain.node(0);
  const cloud = await startCloud({
    schedule: { publish: 0, watch: 0, settle: 0, mine: 0, follow: 0 },
    env: { ...node.ledgerEnv, CREDIT_BASE: '1000000000', CREDIT_CAP: '1000000000' },
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
    // JOB_ROUNDS runs of each, alternating and in balanced order (the chain and the table grow with
    // every run, so neither setting always runs on the smaller one); each row is the median
    const many: { run: PublishSummary; perSecond: number }[] = [];
    const one: { run: PublishSummary; perSecond: number }[] = [];
    for (let round = 0; round < JOB_ROUNDS; round++) {
      if (round % 2 === 0) {
        many.push(await timed());
        one.push(await timed(1));
      } else {
        one.push(await timed(1));
        many.push(await timed());
      }
    }
    const median = (runs: { perSecond: number }[]) => [...runs].sort((a, b) => a.perSecond - b.perSecond)[Math.floor(runs.length / 2)]!.perSecond;
    const complete = (runs: { run: PublishSummary }[]) =>
      runs.every(({ run }) => run.published === JOB_OBLIGATIONS && run.duplicates === 0 && !run.deferred && run.backlog === 0);
    const conditions = (runs: { run: PublishSummary; perSecond: number }[], inFlight: number) =>
      `obligations/s, median of ${runs.length} runs (${runs.map((r) => r.perSecond).join(', ')}; each: ${JOB_OBLIGATIONS} accepted obligations waiting, one run: ${runs[0]!.run.pages} pages of ≤ 200 read from the store's pending index, batches of 32 per publishmultifrom tx, ${inFlight} in flight, each marked published in dynalite; MultiChain 2.3.3 on loopback, 2 s blocks; runs of ${parallel} and of 1 in flight alternate)`;
    const manyRate = median(many);
    const oneRate = median(one);
    return [
      { name: JOB_NAME, value: manyRate, unit: conditions(many, parallel), target: '≥ 100 items/s', ok: manyRate >= 100 && complete(many) },
      {
        name: `${JOB_NAME}, one batch in flight`,
        value: oneRate,
        unit: conditions(one, 1),
        ratio: Math.round((manyRate / oneRate) * 100) / 100,
        target: `ratio: the default (${parallel} in flight) to one; above 1 when batches in flight help`,
        ok: complete(one) && manyRate > oneRate,
      },
    ];
  } finally {
    await cloud.stop();
    await chain.stop();
  }
}
