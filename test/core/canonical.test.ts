import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MalformedError, canonicalize, idOf, parseCanonical, sealCanonical, sha256Hex, type Json } from '../../core/index.ts';

/** Arbitrary JSON with integers only (what the canonical form admits). */
const jsonInts: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    fc.constant(null),
    fc.boolean(),
    fc.maxSafeInteger().filter((n) => !Object.is(n, -0)),
    fc.string({ unit: 'binary' }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), tie('value'), { maxKeys: 5 }),
  ),
})).value;

describe('canonicalize', () => {
  it('sorts keys, drops whitespace and nests', () => {
    assert.equal(canonicalize({ b: 1, a: [true, null, 'x'], c: { z: 0, y: -5 } }), '{"a":[true,null,"x"],"b":1,"c":{"y":-5,"z":0}}');
  });

  it('sorts keys by UTF-16 code units, not code points (RFC 8785)', () => {
    // U+1F600 is the surrogate pair D83D DE00, which sorts before U+FB01 in UTF-16 order.
    assert.equal(canonicalize({ '\ufb01': 1, '\u{1F600}': 2 }), '{"\u{1F600}":2,"\ufb01":1}');
  });

  it('escapes strings as JSON.stringify does', () => {
    assert.equal(canonicalize('a"b\\c\n\u0001'), JSON.stringify('a"b\\c\n\u0001'));
  });

  it('encodes every string exactly as JSON.stringify, lone surrogates included (property)', () => {
    const units = fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u)) }));
    fc.assert(
      fc.property(units, (text) => {
        assert.equal(canonicalize(text), JSON.stringify(text));
        assert.equal(canonicalize({ [text]: 1 }), `{${JSON.stringify(text)}:1}`);
      }),
      { numRuns: 200 },
    );
    for (const text of ['\ud800', 'a\udfffb', '\u{1F600}', '"', '\\', '\u007f', '\u2028']) assert.equal(canonicalize(text), JSON.stringify(text));
  });

  for (const [name, bad] of [
    ['a float', 1.5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-0', -0],
    ['an unsafe integer', 2 ** 53],
    ['undefined', undefined],
    ['a function', () => 1],
    ['a Date', new Date(0)],
    ['a Map', new Map()],
    ['a bigint', 1n],
  ] as const) {
    it(`rejects ${name}`, () => {
      assert.throws(() => canonicalize({ x: bad } as unknown as Json), MalformedError);
    });
  }

  it('rejects nesting deeper than its limit', () => {
    let deep: Json = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    assert.throws(() => canonicalize(deep), MalformedError);
  });
});

describe('parseCanonical', () => {
  it('accepts canonical text', () => {
    assert.deepEqual(parseCanonical('{"a":1,"b":[2,"x"]}'), { a: 1, b: [2, 'x'] });
  });

  for (const [name, text] of [
    ['whitespace', '{"a": 1}'],
    ['unsorted keys', '{"b":1,"a":2}'],
    ['duplicate keys', '{"a":1,"a":1}'],
    ['a float written as 1.0', '{"a":1.0}'],
    ['an exponent', '{"a":1e2}'],
    ['a needless escape', '"\\u0041"'],
    ['invalid JSON', '{"a":'],
    ['a float value', '{"a":1.5}'],
    ['a byte order mark', '\ufeff{}'],
  ] as const) {
    it(`rejects ${name}`, () => {
      assert.throws(() => parseCanonical(text), MalformedError);
    });
  }

  it('rejects input over the size limit', () => {
    const text = JSON.stringify('x'.repeat(100));
    assert.equal(parseCanonical(text, 200), 'x'.repeat(100));
    assert.throws(() => parseCanonical(text, 50), MalformedError);
    // Multi-byte characters count as their UTF-8 bytes.
    assert.throws(() => parseCanonical(JSON.stringify('é'.repeat(40)), 60), MalformedError);
  });

  it('round-trips arbitrary integer JSON (property)', () => {
    fc.assert(
      fc.property(jsonInts, (value) => {
        const text = canonicalize(value);
        const back = parseCanonical(text, 1 << 20);
        assert.equal(canonicalize(back), text);
        assert.deepEqual(back, JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 200 },
    );
  });

  it('agrees with JSON.parse on the value (property)', () => {
    fc.assert(
      fc.property(jsonInts, (value) => {
        assert.deepEqual(JSON.parse(canonicalize(value)), JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 100 },
    );
  });
});

describe('sealCanonical', () => {
  it('encodes a sealed value, wherever it sits, exactly as the value itself (property)', () => {
    fc.assert(
      fc.property(jsonInts, jsonInts, (inner, other) => {
        const sealed = sealCanonical(inner);
        assert.equal(canonicalize(sealed), canonicalize(inner));
        assert.equal(canonicalize({ b: sealed, a: other, c: [sealed] }), canonicalize({ b: inner, a: other, c: [inner] }));
      }),
      { numRuns: 200 },
    );
  });

  it('seals a copy: writing anywhere in it throws, and the original stays writable and apart', () => {
    const original = { body: { domain: 'acme', key: { alg: 'p256', spki: 'AAAA' }, limits: [1, 2] }, sig: 'xyz' };
    const sealed = sealCanonical(original);
    assert.throws(() => {
      (sealed.body.key as { spki: string }).spki = 'BBBB';
    }, TypeError);
    assert.throws(() => {
      sealed.body.limits.push(3);
    }, TypeError);
    assert.throws(() => {
      (sealed as { sig: string }).sig = 'forged';
    }, TypeError);
    original.body.key.spki = 'BBBB';
    original.body.limits.push(3);
    assert.equal(canonicalize(sealed), '{"body":{"domain":"acme","key":{"alg":"p256","spki":"AAAA"},"limits":[1,2]},"sig":"xyz"}');
    assert.equal(canonicalize({ x: sealed }), '{"x":{"body":{"domain":"acme","key":{"alg":"p256","spki":"AAAA"},"limits":[1,2]},"sig":"xyz"}}');
  });

  it('inside another value, counts its own nesting against the depth limit, as the value itself would', () => {
    let inner: Json = 1;
    for (let i = 0; i < 20; i++) inner = [inner];
    const sealed = sealCanonical(inner);
    let outer: Json = sealed;
    for (let i = 0; i < 12; i++) outer = [outer];
    assert.equal(canonicalize(outer), canonicalize(JSON.parse(JSON.stringify(outer)) as Json), 'at the limit: encoded');
    assert.throws(() => canonicalize([outer]), MalformedError, 'one more level: refused, sealed or not');
    assert.throws(() => canonicalize([JSON.parse(JSON.stringify(outer)) as Json]), MalformedError);
  });

  it('refuses what canonicalize refuses', () => {
    assert.throws(() => sealCanonical({ amount: 1.5 }), MalformedError);
    assert.throws(() => sealCanonical({ at: new Date(0) }), MalformedError);
  });
});

describe('hashing', () => {
  it('sha256Hex matches the FIPS 180-2 test vector', () => {
    assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('idOf ignores key order and sees every value', () => {
    assert.equal(idOf({ a: 1, b: 2 }), idOf({ b: 2, a: 1 }));
    assert.notEqual(idOf({ a: 1, b: 2 }), idOf({ a: 1, b: 3 }));
    assert.match(idOf({}), /^[0-9a-f]{64}$/);
  });
});
