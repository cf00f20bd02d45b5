/**
 * Queries: GET /domains/{domain}/reputation (O(1) from counters),
 * GET /domains/{domain}/reputation/verify (admin: also recomputes from the
 * whole ledger), GET /domains/{domain}/obligations (paged),
 * GET /domains/{domain}/devices/{device}/head (a device's chain head),
 * GET /domains/{domain} (its record on the ledger), GET /domains (hosted
 * domains with their figures, paged), GET /health, GET /chain (admin: the
 * node's address and permissions, the chain's parameters; service/chain.ts).
 *
 * The public reads about a domain (reputation, obligations, a device's head, the
 * reputation's verification) answer 404 F07_UNKNOWN_DOMAIN for a domain with no
 * valid record here or on the ledger: no invented newcomer figures. GET
 * /domains/{domain} answers 404 F09_NOT_FOUND when it has no record.
 */
import { DescribeServicesCommand, ECSClient } from '@aws-sdk/client-ecs';
import { logger, tracer } from './shared/observability.ts';
import { ForbiddenError, NotFoundError, UnavailableError, UnknownDomainError } from '../core/errors.ts';
import { currentKey } from '../core/domain-keys.ts';
import { chainMembership } from '../service/chain.ts';
import { fundingOf } from '../service/domains.ts';
import { recomputeFromLedger, reputationOfDomain } from '../service/reputation.ts';
import type { Deps } from './shared/deps.ts';
import { byRouteKey, httpRoute } from './shared/middleware.ts';
import { DeviceParams, DomainParams, DomainsQuery, ObligationsQuery, ReputationQuery, pageToken } from './shared/schemas.ts';
import { GENESIS } from '../core/types.ts';

/** 404 unless the domain has a valid record (hosted here, or learnt from the ledger). */
async function knownDomain(deps: Deps, domain: string): Promise<void> {
  if (!(await deps.directory.get(domain))) {
    throw new UnknownDomainError(`unknown domain ${domain}: no record of it here or on the ledger`, { domain });
  }
}

const reputation = httpRoute({ params: DomainParams, query: ReputationQuery }, async ({ params, query, deps }) => {
  if (query.verify !== undefined) {
    // recomputing reads every record on the ledger: an admin route (IAM on AWS), not a public query flag
    throw new ForbiddenError(
      `verify=${query.verify.slice(0, 16)}: recomputing from the ledger is the admin route GET /domains/${params.domain}/reputation/verify`,
      { route: 'GET /domains/{domain}/reputation/verify' },
    );
  }
  await knownDomain(deps, params.domain);
  return { body: await reputationOfDomain(deps, params.domain) };
});

/**
 * Admin: the counters' figures next to a recomputation from the ledger alone,
 * as any party could do it. It reads the whole `obligations` and `settlements`
 * streams, so it sits behind the IAM authoriser like the other admin routes.
 */
const verifyReputation = httpRoute({ params: DomainParams }, async ({ params, deps }) => {
  await knownDomain(deps, params.domain);
  const view = await reputationOfDomain(deps, params.domain);
  const fromLedger = (await recomputeFromLedger(deps)).get(params.domain);
  return { body: { ...view, ledger: fromLedger ?? null } };
});

/**
 * A device's chain head as this back-end knows it: the seq and id its next
 * obligation must link to (seq + 1, prev = id). A device that lost its chain
 * state (reset, restored backup) asks here after F04_REPLAY / F05_CHAIN_BREAK
 * and resumes. Public like the other reads: the head is on the ledger anyway.
 * The answer carries the head obligation (signed by the device) when there is one.
 */
const head = httpRoute({ params: DeviceParams }, async ({ params, deps }) => {
  await knownDomain(deps, params.domain);
  const h = await deps.store.getChainHead(params.domain, params.device);
  // the head obligation itself, signed by the device: a device adopts a head only when it
  // verifies with its own key (a back-end cannot move a device's chain to a link it never signed)
  const obligation = h ? (await deps.store.getObligation(h.id))?.accepted.obligation : undefined;
  return { body: { domain: params.domain, device: params.device, seq: h?.seq ?? 0, id: h?.id ?? GENESIS, ...(obligation ? { obligation } : {}) } };
});

/** A page of a domain's obligations; `next` (opaque) asks for the following page, null on the last. */
const obligations = httpRoute({ params: DomainParams, query: ObligationsQuery }, async ({ params, query, deps }) => {
  await knownDomain(deps, params.domain);
  const page = await deps.store.pageObligations(query.side, params.domain, {
    limit: query.limit,
    ...(query.status ? { status: query.status } : {}),
    ...(query.next !== undefined ? { after: query.next } : {}),
    newest: query.order === 'newest',
  });
  return {
    body: {
      domain: params.domain,
      side: query.side,
      count: page.items.length,
      obligations: page.items.map(({ accepted: _a, ...rest }) => ({
        ...rest,
        acceptedAt: new Date(rest.acceptedAt).toISOString(),
        dueBy: new Date(rest.dueBy).toISOString(),
      })),
      next: page.last === undefined ? null : pageToken.encode(page.last),
    },
  };
});

const domain = httpRoute({ params: DomainParams }, async ({ params, deps }) => {
  const keys = await deps.directory.keys(params.domain);
  if (!keys) throw new NotFoundError(`no record of ${params.domain} on the ledger`, { domain: params.domain });
  const hosted = await deps.store.getHostedDomain(params.domain);
  return {
    body: {
      record: keys.record,
      // the key the domain signs with now (its record's, or its latest rotation's), and the rotations
      key: currentKey(keys),
      rotations: keys.rotations,
      ...(hosted
        ? {
            hosted: { role: hosted.role, threshold: hosted.threshold, payTo: hosted.payTo ?? null, prices: hosted.prices },
            // its wallet: where to fund it, what it has (trusted + pending) and what it owes; the record
            // stays readable while bitcoind is unreachable
            funding: await fundingOf(deps, hosted).catch((e: unknown) => {
              if (!(e instanceof UnavailableError)) throw e;
              return { unavailable: e.message, address: hosted.fundingAddress ?? hosted.payTo ?? null };
            }),
          }
        : {}),
    },
  };
});

const listDomains = httpRoute({ query: DomainsQuery }, async ({ query, deps }) => {
  const page = await deps.store.pageHostedDomains(query.limit, query.next);
  const hosted = page.items;
  const domains = await Promise.all(
    hosted.map(async (d) => ({
      domain: d.domain,
      role: d.role,
      threshold: d.threshold,
      ...(d.role === 'provider' ? {} : { reputation: await reputationOfDomain(deps, d.domain) }),
    })),
  );
  return { body: { count: domains.length, domains, next: page.last === undefined ? null : pageToken.encode(page.last) } };
});

/** One ECS client per Deps (per hub when several run in one process). */
const ecsClients = new WeakMap<Deps, ECSClient>();

async function chainServices(deps: Deps): Promise<Record<string, string>> {
  if (!deps.config.ecs) return {};
  let ecs = ecsClients.get(deps);
  if (!ecs) {
    const endpoint = deps.config.ecs.endpoint;
    ecs = tracer.captureAWSv3Client(new ECSClient({ ...deps.aws, ...(endpoint ? { endpoint } : {}) }));
    ecsClients.set(deps, ecs);
  }
  const out = await ecs.send(
    new DescribeServicesCommand({ cluster: deps.config.ecs.clusterArn, services: deps.config.ecs.services }),
  );
  return Object.fromEntries(
    (out.services ?? []).map((s) => [s.serviceName ?? '?', `${s.runningCount ?? 0}/${s.desiredCount ?? 0} running`]),
  );
}

/**
 * A component's health for a public caller: what failed is logged, never
 * returned (it names hosts, ports and raw RPC or AWS messages).
 */
function publicHealth(component: string, h: { ok: boolean; detail: string }): { ok: boolean; detail: string } {
  if (h.ok) return h;
  logger.warn('health check failed', { component, detail: h.detail });
  return { ok: false, detail: 'unavailable' };
}

const fail = (e: unknown) => ({ ok: false, detail: String((e as Error).message) });

/** Parked publications the health route lists (the oldest). */
const PARKED_SHOWN = 20;

const health = httpRoute({}, async ({ deps }) => {
  const [ledger, services, bitcoin] = await Promise.all([
    deps.ledger.health().catch(fail),
    chainServices(deps).catch((e: unknown) => {
      logger.warn('health check failed', { component: 'ecs', detail: String((e as Error).message) });
      return { error: 'unavailable' };
    }),
    // the read-only bitcoind user: this function holds no credential that can spend
    deps.bitcoinHealth().catch(fail),
  ]);
  const hosted = await deps.store.listHostedDomains();
  const ok = ledger.ok && bitcoin.ok;
  // obligations the ledger refused for good (parked by the publish job), for an operator to look at
  const parked = (await deps.store.listParkedPublication(PARKED_SHOWN)).map((p) => ({ id: p.id, ...p.publishError }));
  return {
    status: ok ? 200 : 503,
    body: { ok, ledger: publicHealth('ledger', ledger), bitcoin: publicHealth('bitcoin', bitcoin), services, domains: hosted.length, publication: { parked } },
  };
});

/** Admin (IAM): the hub's node address and permissions, the chain's parameters, the P2P endpoint (service/chain.ts). */
const chain = httpRoute({}, async ({ deps }) => ({ status: 200, body: await chainMembership(deps) }));

const routes: Record<string, typeof health> = {
  'GET /domains/{domain}/reputation': reputation,
  'GET /domains/{domain}/reputation/verify': verifyReputation,
  'GET /domains/{domain}/obligations': obligations,
  'GET /domains/{domain}/devices/{device}/head': head,
  'GET /domains/{domain}': domain,
  'GET /domains': listDomains,
  'GET /health': health,
  'GET /chain': chain,
};

export const handler = byRouteKey(routes);
