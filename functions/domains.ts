/** POST /domains — register a hosted domain (keys, wallet, record on the ledger). Admin route. */
import { registerDomain } from '../service/domains.ts';
import { httpRoute } from './shared/middleware.ts';
import { RegisterDomainBody } from './shared/schemas.ts';

export const handler = httpRoute({ body: RegisterDomainBody }, async ({ body, deps }) => {
  const d = await registerDomain(deps, body);
  return { status: d.created ? 201 : 200, body: d };
});
