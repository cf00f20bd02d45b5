/**
 * A federation in one process: N independent hubs that share nothing but the
 * chain (DESIGN.md, "Federation"). Each hub is a LocalCloud with its own
 * DynamoDB table, its own node of one embedded ledger network (publishing as
 * `hub-1`, `hub-2`, …), its own HTTP API, MQTT broker and scheduled jobs
 * (publish, watch, settle, follow). The Bitcoin network is one bcoin regtest
 * with one miner for all; DynamoDB is one dynalite server with a table per hub
 * (separate tables are what keeps the hubs' state apart; a server per hub
 * would add nothing but start-up time).
 *
 * startFederationOn runs the same hubs on given infrastructure instead: each
 * hub on its own Ledger (a MultiChainLedger to its own real node) and all on
 * one given Bitcoin regtest (a real bitcoind; test/real-nodes). The caller
 * starts, stops and closes those.
 */
import { EmbeddedLedgerNetwork, type EmbeddedLedger } from '../adapters/ledger/embedded.ts';
import { createLink } from '../devices/link.ts';
import type { HubEnv } from '../devices/fleet.ts';
import type { Ledger } from '../adapters/ports.ts';
import { startRegtestInThread, type RegtestNode } from './bitcoin.ts';
import { lostThread } from './threads.ts';
import { DEFAULT_SCHEDULE, mineIfPending, startCloud, type JobName, type LocalCloud } from './cloud.ts';
import { startDynamo, type LocalDynamo } from './dynamo.ts';
import { logLine, startScheduler, type Scheduler } from './scheduler.ts';

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

/** Hubs on infrastructure the caller gives and owns: one ledger per hub, one Bitcoin regtest for all. */
export interface GivenInfrastructure {
  /** Hub i's ledger (its own node of one chain); there are as many hubs as ledgers. */
  ledgers: readonly Ledger[];
  /** The one Bitcoin network (e.g. a real regtest bitcoind with kind 'bitcoind'). */
  bitcoin: RegtestNode;
}

/** A federation on given infrastructure: what Federation offers, less the embedded ledger network's controls. */
export interface FederationOn extends Omit<Federation, 'ledgers' | 'network' | 'stopHubLedger' | 'restartHubLedger'> {
  readonly ledgers: readonly Ledger[];
}

export async function startFederation(opts: FederationOptions): Promise<Federation> {
  if (!Number.isInteger(opts.hubs) || opts.hubs < 1) throw new RangeError(`hubs must be an integer ≥ 1, got ${opts.hubs}`);
  const network = new EmbeddedLedgerNetwork({ delayMs: opts.ledgerDelayMs ?? 100 });
  const ledgers = Array.from({ length: opts.hubs }, (_, i) => network.node(publisherOfHub(i)));
  let regtest: RegtestNode | undefined;
  try {
    regtest = await startRegtestInThread({}, lostThread('the embedded regtest node', opts.log ?? logLine));
    const fed = await startHubs(opts, ledgers, regtest, publisherOfHub, async () => {
      await network.close();
      await regtest?.stop();
    });
    const at = <T>(list: readonly T[], i: number): T => {
      const v = list[i];
      if (v === undefined) throw new RangeError(`no hub ${i} (0..${list.length - 1})`);
      return v;
    };
    return {
      ...fed,
      ledgers,
      network,
      stopHubLedger: (i) => at(ledgers, i).setAvailable(false),
      restartHubLedger: (i) => at(ledgers, i).setAvailable(true),
      stopHub: async (i) => {
        at(ledgers, i).setAvailable(false);
        await fed.stopHub(i);
      },
    };
  } catch (e) {
    await network.close().catch(() => undefined);
    await regtest?.stop().catch(() => undefined);
    throw e;
  }
}

/**
 * The same hubs on given ledgers (one per hub) and one given Bitcoin regtest;
 * hub i's publisher is its ledger's identity(). stop() stops the hubs, not
 * what was given.
 */
export async function startFederationOn(opts: Omit<FederationOptions, 'hubs' | 'ledgerDelayMs'>, infra: GivenInfrastructure): Promise<FederationOn> {
  if (infra.ledgers.length < 1) throw new RangeError('at least one ledger (one per hub) is needed');
  const publishers = await Promise.all(infra.ledgers.map((l) => l.identity()));
  const fed = await startHubs({ ...opts, hubs: infra.ledgers.length }, infra.ledgers, infra.bitcoin, (i) => publishers[i] ?? '', async () => {});
  return { ...fed, ledgers: infra.ledgers };
}

/** The hubs, dynalite and the shared miner; `release` runs last on stop (what the caller of this function started). */
async function startHubs(
  opts: FederationOptions,
  ledgers: readonly Ledger[],
  regtest: RegtestNode,
  publisher: (i: number) => string,
  release: () => Promise<void>,
): Promise<FederationOn> {
  const log = opts.log ?? logLine;
  const stops: (() => Promise<void>)[] = [release];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    stops.length = 0;
  };
  try {
    const dynamo = await startDynamo({ thread: true, lost: lostThread('the embedded DynamoDB', log) });
    stops.push(() => dynamo.stop());

    const schedule = { ...DEFAULT_SCHEDULE, ...opts.schedule };
    const hubs: LocalCloud[] = [];
    const stopped = new Set<number>();
    for (let i = 0; i < opts.hubs; i++) {
      const hub = await startCloud({
        dynamoEndpoint: dynamo.endpoint,
        ...(dynamo.requestHandler ? { dynamoTransport: dynamo.requestHandler } : {}),
        regtest,
        ...(ledgers[i] ? { ledger: ledgers[i] } : {}),
        publisher: publisher(i),
        schedule: { ...schedule, mine: 0 }, // one miner for the shared regtest, below
        ...(opts.env ? { env: opts.env } : {}),
        ...(opts.log ? { log: opts.log } : {}),
      });
      hubs.push(hub);
      stops.push(async () => {
        if (!stopped.has(i)) await hub.stop();
      });
    }
    const miner = startScheduler(schedule.mine > 0 ? [{ name: 'mine', everyMs: schedule.mine, run: () => mineIfPending(regtest) }] : [], { log });
    stops.push(() => miner.stop());

    return {
      hubs,
      ledgers,
      regtest,
      dynamo,
      miner,
      publisher,
      stopHub: async (i) => {
        const hub = hubs[i];
        if (!hub) throw new RangeError(`no hub ${i} (0..${hubs.length - 1})`);
        if (stopped.has(i)) return;
        stopped.add(i);
        await hub.stop();
      },
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

/** How a fleet's devices reach one hub of the embedded cloud: its API, its broker, its things and faucet. */
export function hubEnv(hub: LocalCloud): HubEnv {
  return {
    api: hub.api,
    link: (thing, keys) => createLink({ kind: 'local', host: '127.0.0.1', port: hub.broker.port, thing, privateKey: keys.privateKey }),
    registerThing: (thing, domain, key) => hub.registerThing(thing, domain, key),
    fund: (domain) => hub.fund(domain),
  };
}
