/** POST /domains/{domain}/devices — an SCB enrols a device: a credential signed by the domain. Admin route. */
import { enrolDevice } from '../service/domains.ts';
import { httpRoute } from './shared/middleware.ts';
import { DomainParams, EnrolBody } from './shared/schemas.ts';

export const handler = httpRoute({ body: EnrolBody, params: DomainParams }, async ({ body, params, deps }) => {
  const credential = await enrolDevice(deps, { ...body, domain: params.domain });
  return { status: 201, body: { credential } };
});
