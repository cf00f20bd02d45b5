/**
 * Device credentials of a hosted domain:
 * - POST /domains/{domain}/devices — an SCB enrols a device: a short-lived credential signed by the domain. Admin route.
 * - POST /domains/{domain}/devices/{device}/revocation — revoke the device's key at every hub (signed record on the ledger). Admin route.
 * - POST /domains/{domain}/devices/{device}/renewal — the device renews its credential; the request is signed with its own key.
 */
import { enrolDevice, renewCredential, revokeDevice } from '../service/domains.ts';
import { byRouteKey, httpRoute } from './shared/middleware.ts';
import { DeviceParams, DomainParams, EnrolBody, RenewalBody, RevocationBody } from './shared/schemas.ts';

const enrol = httpRoute({ body: EnrolBody, params: DomainParams }, async ({ body, params, deps }) => {
  const credential = await enrolDevice(deps, { ...body, domain: params.domain });
  return { status: 201, body: { credential } };
});

const revoke = httpRoute({ body: RevocationBody, params: DeviceParams }, async ({ body, params, deps }) => {
  const revocation = await revokeDevice(deps, params.domain, params.device, body);
  return { status: 201, body: { revocation } };
});

const renew = httpRoute({ body: RenewalBody, params: DeviceParams }, async ({ body, params, deps }) => {
  const credential = await renewCredential(deps, params.domain, params.device, body.request);
  return { status: 201, body: { credential } };
});

const routes: Record<string, typeof enrol> = {
  'POST /domains/{domain}/devices': enrol,
  'POST /domains/{domain}/devices/{device}/revocation': revoke,
  'POST /domains/{domain}/devices/{device}/renewal': renew,
};

export const handler = byRouteKey(routes);
