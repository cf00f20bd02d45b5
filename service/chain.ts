/**
 * GET /chain (admin): the deployment outputs that only exist at run time.
 * CloudFormation knows the chain's name and the P2P load balancer's address
 * (stack outputs), but the node's address exists only once the node has run
 * (its wallet is on EFS) and the chain's parameters only once the chain is
 * created: this asks the hub's own ledger node (through the Ledger port, the
 * same RPC credentials the functions already hold) and adds the P2P endpoint
 * the deployment was configured with (MULTICHAIN_P2P_ENDPOINT: the NLB's
 * `host:port`, which the node itself cannot know).
 *
 * Organisation A sends organisation B `chainName` and `p2pEndpoint` (B's
 * `-c chainName=… -c joinChain=…`); after A's grant, B checks here that its
 * own hub's `address` holds `connect`, `send`, `receive` and `<stream>.write`.
 *
 * POST /chain/members (admin): what containers/multichain/grant.sh does, from
 * the hub whose node is the chain's admin (organisation A's), without ECS
 * Exec: grant or revoke another hub's node address.
 */
import type { ChainInfo, MembershipChange } from '../adapters/ports.ts';
import type { Deps } from './deps.ts';

export interface ChainMembership extends ChainInfo {
  /** `host:port` other organisations join through (their `-c joinChain=`); null when this deployment admits none. */
  p2pEndpoint: string | null;
}

export async function chainMembership(deps: Deps): Promise<ChainMembership> {
  const info = await deps.ledger.chainInfo();
  const p2p = deps.config.ledger.kind === 'multichain' ? deps.config.ledger.p2pEndpoint : undefined;
  return { ...info, p2pEndpoint: p2p ?? null };
}

/** Grant or revoke `address`'s membership through this hub's node (it must hold admin: else F08_FORBIDDEN). */
export async function setChainMember(deps: Deps, address: string, action: 'grant' | 'revoke'): Promise<{ address: string; action: 'grant' | 'revoke'; transactions: MembershipChange[] }> {
  return { address, action, transactions: await deps.ledger.setMembership(address, action) };
}
