import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareRevisions,
  formatRevision,
  increaseRevision,
  isRevision,
  isRevisionUnder,
  maxRevision,
  normalizeRevision,
  parseRevision,
} from '@prserv/core';

/** Components: mostly tiny (so prefixes and ties are common), sometimes far beyond 2^53. */
const component = fc.oneof(
  { weight: 4, arbitrary: fc.bigInt({ min: 0n, max: 3n }) },
  { weight: 2, arbitrary: fc.bigInt({ min: 0n, max: 12n }) },
  { weight: 1, arbitrary: fc.bigInt({ min: 2n ** 53n - 2n, max: 2n ** 53n + 2n }) },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 96n }) },
);
const components = fc.array(component, { minLength: 1, maxLength: 4 });
/** A revision in canonical spelling ("7", "0.3"). */
const revision = components.map((parts) => parts.map(String).join('.'));
/** A revision possibly spelled with leading zeros ("007.01"). */
const paddedRevision = fc
  .array(fc.tuple(component, fc.nat({ max: 2 })), { minLength: 1, maxLength: 4 })
  .map((parts) => parts.map(([value, zeros]) => '0'.repeat(zeros) + String(value)).join('.'));

/** -1, 0 or 1 (never -0, which `toBe` tells apart from 0). */
const sign = (n: number) => (n < 0 ? -1 : n > 0 ? 1 : 0);

/**
 * An independent model of the order: each component becomes a self-delimiting key that sorts
 * like the integer (digit count, then digits), so plain string order of the concatenation is
 * component-wise order with a proper prefix sorting first.
 */
function modelKey(text: string): string {
  return text
    .split('.')
    .map((part) => {
      const digits = part.replace(/^0+(?=\d)/, '');
      return `${String(digits.length).padStart(4, '0')}${digits}`;
    })
    .join('');
}
function modelCompare(left: string, right: string): number {
  const a = modelKey(left);
  const b = modelKey(right);
  return a === b ? 0 : a < b ? -1 : 1;
}

const INVALID = ['', '1.', '.1', 'a', '1..2', '-1', ' 1', '1 ', '+1', '1.a', '0x1', '1e3', '１', '1\n', '.', '1.2.'];

describe('revision order', () => {
  it('agrees with an independent model of component-wise integer order', () => {
    fc.assert(
      fc.property(paddedRevision, paddedRevision, (a, b) => {
        expect(sign(compareRevisions(a, b))).toBe(modelCompare(a, b));
      }),
      { numRuns: 2000 },
    );
  });

  it('is antisymmetric', () => {
    fc.assert(
      fc.property(paddedRevision, paddedRevision, (a, b) => {
        expect(sign(compareRevisions(a, b)) + sign(compareRevisions(b, a))).toBe(0);
      }),
      { numRuns: 1000 },
    );
  });

  it('is reflexive and connected: only equal revisions compare as equal', () => {
    fc.assert(
      fc.property(paddedRevision, paddedRevision, (a, b) => {
        expect(compareRevisions(a, a)).toBe(0);
        const same = normalizeRevision(a) === normalizeRevision(b);
        expect(compareRevisions(a, b) === 0).toBe(same);
      }),
      { numRuns: 1000 },
    );
  });

  it('is transitive', () => {
    fc.assert(
      fc.property(paddedRevision, paddedRevision, paddedRevision, (a, b, c) => {
        // Sort by the order itself, then every pair of the result must agree with it.
        const sorted = [a, b, c].sort(compareRevisions);
        for (let i = 0; i < sorted.length; i += 1) {
          for (let j = i + 1; j < sorted.length; j += 1) {
            expect(compareRevisions(sorted[i]!, sorted[j]!)).toBeLessThanOrEqual(0);
          }
        }
        if (compareRevisions(a, b) < 0 && compareRevisions(b, c) < 0) expect(compareRevisions(a, c)).toBeLessThan(0);
        if (compareRevisions(a, b) <= 0 && compareRevisions(b, c) <= 0) expect(compareRevisions(a, c)).toBeLessThanOrEqual(0);
      }),
      { numRuns: 1000 },
    );
  });

  it('puts "10" above "9" and "1.10" above "1.2", never comparing as strings', () => {
    expect(compareRevisions('10', '9')).toBeGreaterThan(0);
    expect(compareRevisions('9', '10')).toBeLessThan(0);
    expect(compareRevisions('1.10', '1.2')).toBeGreaterThan(0);
    expect(compareRevisions('1.2', '1.10')).toBeLessThan(0);
    expect(compareRevisions('100', '99.99')).toBeGreaterThan(0);
  });

  it('puts a revision below its extensions: "0" < "0.0" < "0.3" < "1"', () => {
    const ascending = ['0', '0.0', '0.0.0', '0.3', '0.3.1', '1', '1.2', '1.10', '9', '10'];
    for (let i = 0; i < ascending.length; i += 1) {
      for (let j = 0; j < ascending.length; j += 1) {
        expect(sign(compareRevisions(ascending[i]!, ascending[j]!))).toBe(sign(i - j));
      }
    }
    const shuffled = ['1.10', '0.3', '10', '0', '1', '0.0.0', '9', '0.3.1', '1.2', '0.0'];
    expect(shuffled.sort(compareRevisions)).toEqual(ascending);
  });

  it('treats leading zeros as the same integer', () => {
    expect(compareRevisions('07', '7')).toBe(0);
    expect(compareRevisions('0.010', '0.10')).toBe(0);
    expect(compareRevisions('007.01', '7.1')).toBe(0);
    expect(compareRevisions('07', '10')).toBeLessThan(0);
  });

  it('compares components beyond 2^53 exactly', () => {
    // As JavaScript numbers both sides of each pair are the same value.
    expect(Number('9007199254740993')).toBe(Number('9007199254740992'));
    expect(compareRevisions('9007199254740993', '9007199254740992')).toBeGreaterThan(0);
    expect(compareRevisions('1.9007199254740992', '1.9007199254740993')).toBeLessThan(0);
    expect(compareRevisions('18446744073709551616', '18446744073709551615')).toBeGreaterThan(0);
    expect(compareRevisions('99999999999999999999999999999', '100000000000000000000000000000')).toBeLessThan(0);
    fc.assert(
      fc.property(
        fc.bigInt({ min: 2n ** 53n - 4n, max: 2n ** 64n }),
        fc.bigInt({ min: 2n ** 53n - 4n, max: 2n ** 64n }),
        (x, y) => {
          expect(sign(compareRevisions(`3.${x}`, `3.${y}`))).toBe(x === y ? 0 : x < y ? -1 : 1);
        },
      ),
    );
  });
});

describe('increaseRevision', () => {
  it('adds one to the last component', () => {
    expect(increaseRevision('0')).toBe('1');
    expect(increaseRevision('9')).toBe('10');
    expect(increaseRevision('1.9')).toBe('1.10');
    expect(increaseRevision('0.3.1')).toBe('0.3.2');
    expect(increaseRevision('99.99')).toBe('99.100');
    expect(increaseRevision('9007199254740992')).toBe('9007199254740993');
    expect(increaseRevision('18446744073709551615')).toBe('18446744073709551616');
  });

  it('answers in canonical spelling', () => {
    expect(increaseRevision('09')).toBe('10');
    expect(increaseRevision('00.009')).toBe('0.10');
  });

  it('always gives a greater revision that keeps every other component', () => {
    fc.assert(
      fc.property(paddedRevision, (r) => {
        const next = increaseRevision(r);
        expect(compareRevisions(next, r)).toBeGreaterThan(0);
        const before = parseRevision(r);
        const after = parseRevision(next);
        expect(after.length).toBe(before.length);
        expect(after.slice(0, -1)).toEqual(before.slice(0, -1));
        expect(after.at(-1)).toBe(before.at(-1)! + 1n);
      }),
      { numRuns: 1000 },
    );
  });

  it('gives a revision above every extension of its input', () => {
    fc.assert(
      fc.property(revision, components, (r, extra) => {
        const extended = `${r}.${extra.join('.')}`;
        expect(compareRevisions(increaseRevision(r), extended)).toBeGreaterThan(0);
      }),
    );
  });
});

describe('parseRevision and formatRevision', () => {
  it('parse dotted integers into bigint components', () => {
    expect(parseRevision('0')).toEqual([0n]);
    expect(parseRevision('1.1.0')).toEqual([1n, 1n, 0n]);
    expect(parseRevision('007.01')).toEqual([7n, 1n]);
    expect(parseRevision('18446744073709551616')).toEqual([2n ** 64n]);
  });

  it('round-trips a canonical revision through parse and format', () => {
    fc.assert(
      fc.property(revision, (r) => {
        expect(formatRevision(parseRevision(r))).toBe(r);
      }),
      { numRuns: 1000 },
    );
  });

  it('round-trips components through format and parse', () => {
    fc.assert(
      fc.property(components, (parts) => {
        expect(parseRevision(formatRevision(parts))).toEqual(parts);
      }),
    );
  });

  it('normalises leading zeros away and keeps canonical text unchanged', () => {
    expect(normalizeRevision('007.01')).toBe('7.1');
    expect(normalizeRevision('0.00')).toBe('0.0');
    expect(normalizeRevision('1.10')).toBe('1.10');
    fc.assert(
      fc.property(paddedRevision, (r) => {
        const canonical = normalizeRevision(r);
        expect(normalizeRevision(canonical)).toBe(canonical);
        expect(compareRevisions(canonical, r)).toBe(0);
        expect(canonical).toMatch(/^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/);
      }),
    );
  });

  it('refuses to format no components or a negative component', () => {
    expect(() => formatRevision([])).toThrow(RangeError);
    expect(() => formatRevision([-1n])).toThrow(RangeError);
    expect(() => formatRevision([1n, -2n])).toThrow(RangeError);
  });

  it.each(INVALID)('rejects %j with a RangeError everywhere', (text) => {
    expect(isRevision(text)).toBe(false);
    expect(() => parseRevision(text)).toThrow(RangeError);
    expect(() => normalizeRevision(text)).toThrow(RangeError);
    expect(() => increaseRevision(text)).toThrow(RangeError);
    expect(() => compareRevisions(text, '0')).toThrow(RangeError);
    expect(() => compareRevisions('0', text)).toThrow(RangeError);
    expect(() => isRevisionUnder(text, '0')).toThrow(RangeError);
    expect(() => isRevisionUnder('0.1', text)).toThrow(RangeError);
    expect(() => maxRevision(text, '0')).toThrow(RangeError);
  });

  it('names the offending text in the error', () => {
    expect(() => parseRevision('1..2')).toThrow(/"1\.\.2"/);
  });

  it('accepts exactly the strings of dot-separated ASCII digits', () => {
    const model = /^[0-9]+(\.[0-9]+)*$/;
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[0-9.]{0,8}$/), fc.string({ unit: 'binary' })), (text) => {
        expect(isRevision(text)).toBe(model.test(text));
        if (model.test(text)) expect(() => parseRevision(text)).not.toThrow();
        else expect(() => parseRevision(text)).toThrow(RangeError);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('isRevisionUnder', () => {
  it('is true for extensions of the prefix by at least one component', () => {
    expect(isRevisionUnder('0.3', '0')).toBe(true);
    expect(isRevisionUnder('0.3.1', '0.3')).toBe(true);
    expect(isRevisionUnder('0.3.1', '0')).toBe(true);
    expect(isRevisionUnder('1.0', '1')).toBe(true);
    expect(isRevisionUnder('07.1', '7')).toBe(true);
  });

  it('is false for the prefix itself, for siblings and for look-alike strings', () => {
    expect(isRevisionUnder('0.3', '0.3')).toBe(false);
    expect(isRevisionUnder('0', '0.3')).toBe(false);
    expect(isRevisionUnder('0.30', '0.3')).toBe(false);
    expect(isRevisionUnder('10.1', '1')).toBe(false);
    expect(isRevisionUnder('1.4', '0')).toBe(false);
  });

  it('holds exactly for proper extensions, which are always greater', () => {
    fc.assert(
      fc.property(components, fc.array(component, { maxLength: 3 }), (prefix, extra) => {
        const p = formatRevision(prefix);
        const r = formatRevision([...prefix, ...extra]);
        expect(isRevisionUnder(r, p)).toBe(extra.length > 0);
        if (extra.length > 0) expect(compareRevisions(r, p)).toBeGreaterThan(0);
      }),
    );
    fc.assert(
      fc.property(revision, revision, (a, b) => {
        if (isRevisionUnder(a, b)) {
          expect(a.startsWith(`${b}.`)).toBe(true);
          expect(compareRevisions(a, b)).toBeGreaterThan(0);
        } else {
          expect(a.startsWith(`${b}.`)).toBe(false);
        }
      }),
    );
  });
});

describe('maxRevision', () => {
  it('skips an absent side', () => {
    expect(maxRevision(null, null)).toBeNull();
    expect(maxRevision('3', null)).toBe('3');
    expect(maxRevision(null, '0.1')).toBe('0.1');
  });

  it('takes the greater by revision order, not string order', () => {
    expect(maxRevision('9', '10')).toBe('10');
    expect(maxRevision('1.10', '1.2')).toBe('1.10');
    expect(maxRevision('0', '0.0')).toBe('0.0');
  });

  it('is the greater of the two, whichever side it is on', () => {
    fc.assert(
      fc.property(paddedRevision, paddedRevision, (a, b) => {
        const m = maxRevision(a, b)!;
        expect([a, b]).toContain(m);
        expect(compareRevisions(m, a)).toBeGreaterThanOrEqual(0);
        expect(compareRevisions(m, b)).toBeGreaterThanOrEqual(0);
        expect(compareRevisions(maxRevision(b, a)!, m)).toBe(0);
      }),
    );
  });
});
