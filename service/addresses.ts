/**
 * The one rule for payment addresses that enter the system (a provider's
 * payTo at registration and in offers, an obligation's payTo at acceptance,
 * one learnt from the ledger, and every output of a settlement): it must be an
 * address of the network this hub pays on (BITCOIN_NETWORK, in the format of
 * its node). Another network's address is F17_WRONG_NETWORK, never a payment.
 */
import { addressFormat, checkAddress } from '../core/network.ts';
import type { Deps } from './deps.ts';

export function checkPayTo(deps: Pick<Deps, 'config'>, address: unknown): string {
  return checkAddress(address, addressFormat(deps.config.bitcoin.network, deps.config.bitcoin.kind));
}
