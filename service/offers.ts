/** SPB: sign an offer, for one of its enrolled devices, answering a consumer device's request; remember it for acceptance. */
import { MalformedError, NotFoundError } from '../core/errors.ts';
import { createOffer, newOfferId } from '../core/records.ts';
import type { Offer, Signed } from '../core/types.ts';
import type { Deps } from '../functions/shared/deps.ts';
import { checkPayTo } from './addresses.ts';
import { hubKeyOf } from './keys.ts';
import { topics } from './topics.ts';

export interface OfferRequest {
  requestId: string;
  consumerDomain: string;
  consumerDevice: string;
  providerDomain: string;
  providerDevice: string;
  service: string;
}

export async function makeOffer(deps: Deps, req: OfferRequest, reply: boolean): Promise<Signed<Offer>> {
  const provider = await deps.store.getHostedDomain(req.providerDomain);
  if (!provider || provider.role === 'consumer' || !provider.payTo) {
    throw new NotFoundError(`provider domain ${req.providerDomain} is not hosted here`, { domain: req.providerDomain });
  }
  if (!(await deps.store.getDevice(provider.domain, req.providerDevice))) {
    throw new NotFoundError(`device ${req.providerDevice} is not enrolled in ${provider.domain}`, {
      domain: provider.domain,
      device: req.providerDevice,
    });
  }
  checkPayTo(deps, provider.payTo);
  const price = provider.prices[req.service];
  if (price === undefined) {
    throw new MalformedError(`provider ${req.providerDomain} does not sell ${req.service}`, {
      services: Object.keys(provider.prices),
    });
  }
  // signed in process with the hub key the domain key certified: no KMS call per offer
  const hubKey = await hubKeyOf(deps, provider);
  const offer = createOffer(
    {
      offerId: newOfferId(),
      providerDomain: provider.domain,
      providerDevice: req.providerDevice,
      service: req.service,
      price,
      payTo: provider.payTo,
      consumer: `${req.consumerDomain}/${req.consumerDevice}`,
      expiresAt: deps.now() + deps.config.offerTtlMs,
      certificate: hubKey.certificate,
    },
    hubKey.privateKey,
  );
  await deps.store.putOffer(offer);
  if (reply) {
    await deps.notifier.publish(topics.toDevice(req.consumerDomain, req.consumerDevice, 'offer'), {
      requestId: req.requestId,
      offer: offer as never,
    });
  }
  return offer;
}
