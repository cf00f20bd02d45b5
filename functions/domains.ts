/**
 * POST /domains — register a hosted domain (keys, wallet, record on the ledger).
 * POST /domains/{domain}/faucet — regtest only: mine coins to the domain's funding address.
 * Both admin routes (IAM on AWS).
 */
import { fundDomain, registerDomain } from '../service/domains.ts';
import { httpRoute } from './shared/middleware.ts';
import { DomainParams, FaucetBody, RegisterDomainBody } from './shared/schemas.ts';

const register = httpRoute({ body: RegisterDomainBody }, async ({ body, deps }) => {
  const d = await registerDomain(deps, body);
  return { status: d.created ? 201 : 200, body: d };
});

const faucet = httpRoute({ body: FaucetBody, params: DomainParams }, async ({ body, params, deps }) => ({
  status: 201,
  body: await fundDomain(deps, params.domain, body.blocks),
}));

export const handler = (event: { routeKey?: string }, context: Parameters<typeof register>[1]) =>
  (event.routeKey === 'POST /domains/{domain}/faucet' ? faucet : register)(event as never, context);
