/**
 * POST /domains — register a hosted domain (keys, wallet, record on the ledger).
 * POST /domains/{domain}/faucet — regtest only: mine coins to the domain's funding address.
 * POST /domains/{domain}/key-rotation — replace the domain's key (a rotation record on the ledger).
 * POST /chain/members — grant or revoke another hub's node on the chain (service/chain.ts).
 * All admin routes (IAM on AWS).
 */
import { setChainMember } from '../service/chain.ts';
import { fundDomain, registerDomain, rotateDomainKey } from '../service/domains.ts';
import { httpRoute } from './shared/middleware.ts';
import { logger } from './shared/observability.ts';
import { ChainMemberBody, DomainParams, FaucetBody, KeyRotationBody, RegisterDomainBody } from './shared/schemas.ts';

const register = httpRoute({ body: RegisterDomainBody }, async ({ body, deps }) => {
  const d = await registerDomain(deps, body);
  return { status: d.created ? 201 : 200, body: d };
});

const faucet = httpRoute({ body: FaucetBody, params: DomainParams }, async ({ body, params, deps }) => ({
  status: 201,
  body: await fundDomain(deps, params.domain, body.blocks),
}));

const rotate = httpRoute({ body: KeyRotationBody, params: DomainParams }, async ({ params, deps }) => {
  const rotated = await rotateDomainKey(deps, params.domain);
  if (!rotated.retired) logger.error('replaced domain key not retired: retire it by hand', { domain: rotated.domain, reason: rotated.notRetired });
  return { status: 201, body: rotated };
});

const member = httpRoute({ body: ChainMemberBody }, async ({ body, deps }) => ({
  status: 200,
  body: await setChainMember(deps, body.address, body.action),
}));

const routes: Record<string, typeof register> = {
  'POST /domains': register,
  'POST /domains/{domain}/faucet': faucet as typeof register,
  'POST /domains/{domain}/key-rotation': rotate as typeof register,
  'POST /chain/members': member as typeof register,
};

export const handler = (event: { routeKey?: string }, context: Parameters<typeof register>[1]) => (routes[event.routeKey ?? ''] ?? register)(event as never, context);
