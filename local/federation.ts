/**
 * A federation in one process: N independent hubs that share nothing but the
 * chain (DESIGN.md, "Federation"). Each hub is a LocalCloud with its own
 * DynamoDB table, its own node of one embedded ledger network (publishing as
 * `hub-1`, `hub-2`, …), its own HTTP API, MQTT broker and scheduled jobs
 * (publish, watch, settle, follow). The Bitcoin network is one bcoin regtest
 * with one miner for all; DynamoDB is one dynalite server with a table per hub
 * (separate tables are what keeps the hubs' state apart; a server per hub
 * would add nothing but start-up time).
 */
import { EmbeddedLedgerNetwork, type EmbeddedLedger } from '../adapters/ledger/embedded.ts';
import { startRegtest, type RegtestNode } from './bitcoin.ts';
import { DEFAULT_SCHEDULE, mineIfPending, startCloud, type JobName, type LocalCloud } from './cloud.ts';
import { startDynamo, type LocalDynamo } from './dynamo.ts';
import { startScheduler, type Scheduler } from './scheduler.ts';

export interface FederationOptions {
  /** Number of hubs (≥ 1). */
  hubs: number;
  /** How long a ledger item takes to reach the other hubs' nodes (default 100 ms). */
  ledgerDelayMs?: number;
  /** Each hub's job periods in ms (0 disables); `mine` is the one shared miner's period. */
  schedule?: Partial<Record<JobName, number>>;
  /** Extra handler environment for every hub (e.g. CREDIT_BASE). */
  env?: Record<string, string>;
  /** Where failures of scheduled jobs are reported. */
  log?: (message: string, error: unknown) => void;
}

export interface Federation {
  /** The hubs; `hubs[i]` publishes on the ledger as `hub-${i + 1}`. */
  readonly hubs: readonly LocalCloud[];
  /** Each hub's ledger node, by the same index. */
  readonly ledgers: readonly EmbeddedLedger[];
  readonly network: EmbeddedLedgerNetwork;
  readonly regtest: RegtestNode;
  readonly dynamo: LocalDynamo;
  /** The shared miner (job `mine`). */
  readonly miner: Scheduler;
  /** Publisher address of hub `i` (0-based). */
  publisher(i: number): string;
  /** Take hub `i`'s ledger node down (fault tests): it neither serves nor receives until restarted. */
  stopHubLedger(i: number): void;
  /** Bring hub `i`'s ledger node back; it catches up, in order, with what it missed. */
  restartHubLedger(i: number): void;
  /** Stop hub `i` entirely (API, broker, jobs; its ledger node goes down). */
  stopHub(i: number): Promise<void>;
  stop(): Promise<void>;
}

export const publisherOfHub = (i: number): string => `hub-${i + 1}`;

export async function startFederation(opts: FederationOptions): Promise<Federation> {
  if (!Number.isInteger(opts.hubs) || opts.hubs < 1) throw new RangeError(`hubs must be an integer ≥ 1, got ${opts.hubs}`);
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    stops.length = 0;
  };
  try {
    const dynamo = await startDynamo();
    stops.push(() => dynamo.stop());
    const regtest = await startRegtest();
    stops.push(() => regtest.stop());
    const network = new EmbeddedLedgerNetwork({ delayMs: opts.ledgerDelayMs ?? 100 });
    stops.push(() => network.close());

    const schedule = { ...DEFAULT_SCHEDULE, ...opts.schedule };
    const hubs: LocalCloud[] = [];
    const ledgers: EmbeddedLedger[] = [];
    const stopped = new Set<number>();
    for (let i = 0; i < opts.hubs; i++) {
      const ledger = network.node(publisherOfHub(i));
      ledgers.push(ledger);
      const hub = await startCloud({
        dynamoEndpoint: dynamo.endpoint,
        regtest,
        ledger,
        publisher: publisherOfHub(i),
        schedule: { ...schedule, mine: 0 }, // one miner for the shared regtest, below
        ...(opts.env ? { env: opts.env } : {}),
        ...(opts.log ? { log: opts.log } : {}),
      });
      hubs.push(hub);
      stops.push(async () => {
        if (!stopped.has(i)) await hub.stop();
      });
    }
    const log = opts.log ?? ((msg: string, e: unknown) => console.error(`${msg}: ${(e as Error)?.message ?? String(e)}`));
    const miner = startScheduler(schedule.mine > 0 ? [{ name: 'mine', everyMs: schedule.mine, run: () => mineIfPending(regtest) }] : [], { log });
    stops.push(() => miner.stop());

    const at = <T>(list: readonly T[], i: number): T => {
      const v = list[i];
      if (v === undefined) throw new RangeError(`no hub ${i} (0..${list.length - 1})`);
      return v;
    };
    return {
      hubs,
      ledgers,
      network,
      regtest,
      dynamo,
      miner,
      publisher: publisherOfHub,
      stopHubLedger: (i) => at(ledgers, i).setAvailable(false),
      restartHubLedger: (i) => at(ledgers, i).setAvailable(true),
      stopHub: async (i) => {
        const hub = at(hubs, i);
        if (stopped.has(i)) return;
        stopped.add(i);
        at(ledgers, i).setAvailable(false);
        await hub.stop();
      },
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
