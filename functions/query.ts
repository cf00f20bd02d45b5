/**
 * Queries: GET /domains/{domain}/reputation (O(1) from counters; `?verify=ledger`
 * also recomputes from the ledger alone), GET /domains/{domain}/obligations,
 * GET /domains/{domain}/devices/{device}/head (a device's chain head), GET /domains/{domain} (its record on the ledger), GET /domains (hosted domains
 * with their figures), GET /health.
 */
import { DescribeServicesCommand, ECSClient } from '@aws-sdk/client-ecs';
import { z } from 'zod';
import { NotFoundError } from '../core/errors.ts';
import { recomputeFromLedger, reputationOfDomain } from '../service/reputation.ts';
import type { Deps } from './shared/deps.ts';
import { httpRoute } from './shared/middleware.ts';
import { DeviceParams, DomainParams } from './shared/schemas.ts';
import { GENESIS } from '../core/types.ts';

const reputation = httpRoute({ params: DomainParams }, async ({ params, query, deps }) => {
  const view = await reputationOfDomain(deps, params.domain);
  if (query.verify !== 'ledger') return { body: view };
  const fromLedger = (await recomputeFromLedger(deps)).get(params.domain);
  return { body: { ...view, ledger: fromLedger ?? null } };
});

/**
 * A device's chain head as this back-end knows it: the seq and id its next
 * obligation must link to (seq + 1, prev = id). A device that lost its chain
 * state (reset, restored backup) asks here after F04_REPLAY / F05_CHAIN_BREAK
 * and resumes. Public like the other reads: the head is on the ledger anyway.
 */
const head = httpRoute({ params: DeviceParams }, async ({ params, deps }) => {
  const h = await deps.store.getChainHead(params.domain, params.device);
  return { body: { domain: params.domain, device: params.device, seq: h?.seq ?? 0, id: h?.id ?? GENESIS } };
});

const StatusQuery = z.enum(['accepted', 'settling', 'fulfilled', 'defaulted']).optional();

const obligations = httpRoute({ params: DomainParams }, async ({ params, query, deps }) => {
  const status = StatusQuery.parse(query.status);
  const side = query.side === 'provider' ? 'provider' : 'consumer';
  const items =
    side === 'provider'
      ? await deps.store.listByProvider(params.domain, status)
      : await deps.store.listByConsumer(params.domain, status);
  return {
    body: {
      domain: params.domain,
      side,
      count: items.length,
      obligations: items.map(({ accepted: _a, ...rest }) => ({
        ...rest,
        acceptedAt: new Date(rest.acceptedAt).toISOString(),
        dueBy: new Date(rest.dueBy).toISOString(),
      })),
    },
  };
});

const domain = httpRoute({ params: DomainParams }, async ({ params, deps }) => {
  const record = await deps.directory.get(params.domain);
  if (!record) throw new NotFoundError(`no record of ${params.domain} on the ledger`, { domain: params.domain });
  const hosted = await deps.store.getHostedDomain(params.domain);
  return {
    body: {
      record,
      ...(hosted ? { hosted: { role: hosted.role, threshold: hosted.threshold, payTo: hosted.payTo ?? null, prices: hosted.prices } } : {}),
    },
  };
});

const listDomains = httpRoute({}, async ({ deps }) => {
  const hosted = await deps.store.listHostedDomains();
  const domains = await Promise.all(
    hosted.map(async (d) => ({
      domain: d.domain,
      role: d.role,
      threshold: d.threshold,
      ...(d.role === 'provider' ? {} : { reputation: await reputationOfDomain(deps, d.domain) }),
    })),
  );
  return { body: { count: domains.length, domains } };
});

/** One ECS client per Deps (per hub when several run in one process). */
const ecsClients = new WeakMap<Deps, ECSClient>();

async function chainServices(deps: Deps): Promise<Record<string, string>> {
  if (!deps.config.ecs) return {};
  let ecs = ecsClients.get(deps);
  if (!ecs) {
    const endpoint = deps.config.ecs.endpoint;
    ecs = new ECSClient({ ...deps.aws, ...(endpoint ? { endpoint } : {}) });
    ecsClients.set(deps, ecs);
  }
  const out = await ecs.send(
    new DescribeServicesCommand({ cluster: deps.config.ecs.clusterArn, services: deps.config.ecs.services }),
  );
  return Object.fromEntries(
    (out.services ?? []).map((s) => [s.serviceName ?? '?', `${s.runningCount ?? 0}/${s.desiredCount ?? 0} running`]),
  );
}

/** Parked publications the health route lists (the oldest). */
const PARKED_SHOWN = 20;

const health = httpRoute({}, async ({ deps }) => {
  const [ledger, services] = await Promise.all([
    deps.ledger.health().catch((e: unknown) => ({ ok: false, detail: String((e as Error).message) })),
    chainServices(deps).catch((e: unknown) => ({ error: String((e as Error).message) })),
  ]);
  const hosted = await deps.store.listHostedDomains();
  const wallets = await Promise.all(
    hosted.slice(0, 1).map(async (d) => (await deps.payments(d.wallet)).health()),
  ).catch((e: unknown) => [{ ok: false, detail: String((e as Error).message) }]);
  const bitcoin = wallets[0] ?? { ok: true, detail: 'no wallet yet' };
  const ok = ledger.ok && bitcoin.ok;
  // obligations the ledger refused for good (parked by the publish job), for an operator to look at
  const parked = (await deps.store.listParkedPublication(PARKED_SHOWN)).map((p) => ({ id: p.id, ...p.publishError }));
  return { status: ok ? 200 : 503, body: { ok, ledger, bitcoin, services, domains: hosted.length, publication: { parked } } };
});

const routes: Record<string, typeof health> = {
  'GET /domains/{domain}/reputation': reputation,
  'GET /domains/{domain}/obligations': obligations,
  'GET /domains/{domain}/devices/{device}/head': head,
  'GET /domains/{domain}': domain,
  'GET /domains': listDomains,
  'GET /health': health,
};

export const handler = (event: { routeKey?: string }, context: Parameters<typeof health>[1]) => {
  const route = routes[event.routeKey ?? ''];
  if (!route) {
    return Promise.resolve({ statusCode: 404, headers: { 'content-type': 'application/json' }, body: '{"message":"Not Found"}' });
  }
  return route(event as never, context);
};
