import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MalformedError, paymentChains, planSettlement, settlementIdOf, type PendingObligation } from '../../core/index.ts';

const id = (n: number) => n.toString(16).padStart(64, '0');
const pending = (n: number, payTo: string, amount: number, providerDomain = `prov-${payTo}`): PendingObligation => ({
  id: id(n),
  payTo,
  providerDomain,
  amount,
});

describe('planSettlement', () => {
  it('groups by address, sums amounts, sorts outputs and ids', () => {
    const [plan, ...rest] = planSettlement([pending(3, 'Rb', 100), pending(1, 'Ra', 50), pending(2, 'Rb', 25)]);
    assert.equal(rest.length, 0);
    assert.deepEqual(plan, {
      outputs: [
        { payTo: 'Ra', providerDomain: 'prov-Ra', amount: 50, obligationIds: [id(1)] },
        { payTo: 'Rb', providerDomain: 'prov-Rb', amount: 125, obligationIds: [id(2), id(3)] },
      ],
      total: 175,
      obligationIds: [id(1), id(2), id(3)],
    });
  });

  it('makes the same plan whatever the input order', () => {
    const items = [pending(3, 'Rb', 100), pending(1, 'Ra', 50), pending(2, 'Rb', 25), pending(4, 'Rc', 1)];
    assert.deepEqual(planSettlement(items), planSettlement([...items].reverse()));
  });

  it('splits into several plans beyond maxOutputs', () => {
    const items = Array.from({ length: 7 }, (_, i) => pending(i + 1, `R${i}`, 10));
    const plans = planSettlement(items, { maxOutputs: 3 });
    assert.deepEqual(plans.map((pl) => pl.outputs.length), [3, 3, 1]);
    assert.equal(plans.reduce((s, pl) => s + pl.total, 0), 70);
  });

  it('plans nothing for nothing', () => {
    assert.deepEqual(planSettlement([]), []);
  });

  it('rejects a duplicate id, a shared address, or a bad amount', () => {
    assert.throws(() => planSettlement([pending(1, 'Ra', 1), pending(1, 'Rb', 1)]), MalformedError);
    assert.throws(() => planSettlement([pending(1, 'Ra', 1, 'x'), pending(2, 'Ra', 1, 'y')]), MalformedError);
    assert.throws(() => planSettlement([pending(1, 'Ra', 0)]), MalformedError);
    assert.throws(() => planSettlement([pending(1, 'Ra', 1.5)]), MalformedError);
    assert.throws(() => planSettlement([pending(1, 'Ra', 1)], { maxOutputs: 0 }), MalformedError);
  });
});

describe('settlementIdOf', () => {
  it('is the same for the same set in any order, and differs by domain or set', () => {
    const a = settlementIdOf('acme', [id(2), id(1)]);
    assert.equal(a, settlementIdOf('acme', [id(1), id(2)]));
    assert.notEqual(a, settlementIdOf('other', [id(1), id(2)]));
    assert.notEqual(a, settlementIdOf('acme', [id(1)]));
    assert.match(a, /^[0-9a-f]{64}$/);
  });
});

describe('paymentChains', () => {
  const p = (txid: string, spends: string[], broadcastHeight?: number, bumped = false) => ({
    txid,
    spends,
    bumped,
    ...(broadcastHeight === undefined ? {} : { broadcastHeight }),
  });

  it('a payment alone is its own leaf and waits from its broadcast', () => {
    assert.deepEqual(Object.fromEntries(paymentChains([p('a', ['coin'], 10)])), { a: { leaf: true, waitingSince: 10 } });
  });

  it('a chain (each spending the last one\'s change) waits from its oldest broadcast; only its last payment is a leaf', () => {
    const chains = paymentChains([p('c', ['b'], 14), p('a', ['coin'], 10), p('b', ['a', 'other'], 12)]);
    assert.deepEqual(Object.fromEntries(chains), {
      a: { leaf: false, waitingSince: 10 },
      b: { leaf: false, waitingSince: 10 },
      c: { leaf: true, waitingSince: 10 },
    });
  });

  it("a bump restarts its chain's wait, even once a later payment spends the bumped one", () => {
    const chains = paymentChains([p('a', ['coin'], 10), p('b2', ['a'], 16, true), p('c', ['b2'], 17)]);
    assert.deepEqual([...chains.values()].map((c) => c.waitingSince), [16, 16, 16]);
    assert.deepEqual([...chains.entries()].filter(([, c]) => c.leaf).map(([t]) => t), ['c']);
  });

  it('separate chains wait apart; two payments spending one are both leaves; one not yet broadcast does not count', () => {
    const chains = paymentChains([p('a', ['coin1'], 10), p('x', ['coin2'], 20), p('y', ['x'], 21), p('z', ['x']), p('q', ['coin3'])]);
    assert.deepEqual(Object.fromEntries(chains), {
      a: { leaf: true, waitingSince: 10 },
      x: { leaf: false, waitingSince: 20 },
      y: { leaf: true, waitingSince: 20 },
      z: { leaf: true, waitingSince: 20 },
      q: { leaf: true },
    });
  });
});
