import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ChecksumFacts,
  INITIAL_REVISION,
  compareRevisions,
  decideChainedGetPr,
  decideGetPr,
  decideLegacyImport,
  decideTestPr,
  increaseRevision,
} from '@prserv/core';

/** Facts for a package whose greatest revision is `max`, about a checksum holding `first`..`last`. */
function facts(max: string | null, first: string | null = null, last: string | null = first): ChecksumFacts {
  return { packageMax: max, checksumFirst: first, checksumLast: last };
}

const unknownPackage = facts(null);

describe('decideGetPr', () => {
  it('starts an unknown package at "0" in either mode', () => {
    expect(INITIAL_REVISION).toBe('0');
    expect(decideGetPr(unknownPackage, false)).toEqual({ value: '0', isNew: true });
    expect(decideGetPr(unknownPackage, true)).toEqual({ value: '0', isNew: true });
  });

  describe('in history mode', () => {
    it('gives a known checksum its first PR, even when the package moved on', () => {
      expect(decideGetPr(facts('4', '0', '4'), true)).toEqual({ value: '0', isNew: false });
      expect(decideGetPr(facts('4', '2', '2'), true)).toEqual({ value: '2', isNew: false });
      expect(decideGetPr(facts('1.10', '0.3', '1.10'), true)).toEqual({ value: '0.3', isNew: false });
    });

    it('gives a new checksum one above the package maximum', () => {
      expect(decideGetPr(facts('3'), true)).toEqual({ value: '4', isNew: true });
      expect(decideGetPr(facts('0.3'), true)).toEqual({ value: '0.4', isNew: true });
    });
  });

  describe('in no-history mode', () => {
    it('gives a new checksum one above the package maximum', () => {
      expect(decideGetPr(facts('0'), false)).toEqual({ value: '1', isNew: true });
      expect(decideGetPr(facts('3'), false)).toEqual({ value: '4', isNew: true });
      expect(decideGetPr(facts('0.3.1'), false)).toEqual({ value: '0.3.2', isNew: true });
    });

    it('keeps a known checksum on its last PR while that is the package maximum', () => {
      expect(decideGetPr(facts('3', '3'), false)).toEqual({ value: '3', isNew: false });
      expect(decideGetPr(facts('4', '0', '4'), false)).toEqual({ value: '4', isNew: false });
      expect(decideGetPr(facts('0.3', '0.3'), false)).toEqual({ value: '0.3', isNew: false });
    });

    it('gives a returning checksum a higher PR in no-history mode', () => {
      // Worked example of docs/protocol.md §6.6: c0..c3 hold 0..3, c0 comes back.
      expect(decideGetPr(facts('3', '0'), false)).toEqual({ value: '4', isNew: true });
      expect(decideGetPr(facts('0.3', '0.1', '0.2'), false)).toEqual({ value: '0.4', isNew: true });
    });

    it('moves a returning checksum from "9" past "10", never comparing as strings', () => {
      // As strings "9" > "10": a string order would keep c9 on "9" below the package maximum.
      expect(decideGetPr(facts('10', '9'), false)).toEqual({ value: '11', isNew: true });
      expect(decideGetPr(facts('1.10', '1.9'), false)).toEqual({ value: '1.11', isNew: true });
      expect(decideGetPr(facts('10', '10'), false)).toEqual({ value: '10', isNew: false });
    });

    it('increases "9" to "10" and "1.9" to "1.10"', () => {
      expect(decideGetPr(facts('9'), false)).toEqual({ value: '10', isNew: true });
      expect(decideGetPr(facts('9'), true)).toEqual({ value: '10', isNew: true });
      expect(decideGetPr(facts('1.9'), false)).toEqual({ value: '1.10', isNew: true });
    });

    it('treats a last PR below a dotted maximum as behind it: "0.3" < "0.3.0"', () => {
      expect(decideGetPr(facts('0.3.0', '0.3'), false)).toEqual({ value: '0.3.1', isNew: true });
      expect(decideGetPr(facts('1', '0.9'), false)).toEqual({ value: '2', isNew: true });
    });
  });

  it('never answers below the package maximum unless history mode keeps a first PR', () => {
    const rev = fc.array(fc.nat({ max: 11 }), { minLength: 1, maxLength: 3 }).map((parts) => parts.join('.'));
    fc.assert(
      fc.property(fc.array(rev, { minLength: 1, maxLength: 5 }), fc.option(fc.nat()), fc.boolean(), (values, pick, history) => {
        const sorted = [...values].sort(compareRevisions);
        const max = sorted.at(-1)!;
        // The checksum, when known, holds some of the package's values.
        const held = pick === null ? [] : sorted.filter((_, index) => (index + pick) % 2 === 0);
        const state = facts(max, held[0] ?? null, held.at(-1) ?? null);
        const decision = decideGetPr(state, history);
        if (history && held.length > 0) {
          expect(decision).toEqual({ value: held[0], isNew: false });
        } else if (!history && held.length > 0 && compareRevisions(held.at(-1)!, max) === 0) {
          expect(decision).toEqual({ value: held.at(-1), isNew: false });
        } else {
          expect(decision).toEqual({ value: increaseRevision(max), isNew: true });
          expect(compareRevisions(decision.value, max)).toBeGreaterThan(0);
        }
      }),
    );
  });
});

describe('decideTestPr', () => {
  it('answers null for an unknown checksum or package', () => {
    expect(decideTestPr(unknownPackage, false)).toBeNull();
    expect(decideTestPr(unknownPackage, true)).toBeNull();
    expect(decideTestPr(facts('5'), false)).toBeNull();
    expect(decideTestPr(facts('5'), true)).toBeNull();
  });

  it('answers the first PR in history mode and the last otherwise', () => {
    expect(decideTestPr(facts('5', '1', '4'), true)).toBe('1');
    expect(decideTestPr(facts('5', '1', '4'), false)).toBe('4');
    expect(decideTestPr(facts('1.10', '0.3', '1.10'), true)).toBe('0.3');
    expect(decideTestPr(facts('1.10', '0.3', '1.10'), false)).toBe('1.10');
  });

  it('answers what get-pr would keep for a checksum at the maximum', () => {
    const state = facts('10', '9', '10');
    expect(decideTestPr(state, false)).toBe(decideGetPr(state, false).value);
    expect(decideTestPr(state, true)).toBe(decideGetPr(state, true).value);
  });
});

describe('decideLegacyImport', () => {
  it('stores the value for an unknown checksum', () => {
    expect(decideLegacyImport(null, '7')).toEqual({ value: '7', isNew: true });
    expect(decideLegacyImport(null, '0')).toEqual({ value: '0', isNew: true });
  });

  it('stores a value above what the checksum holds', () => {
    expect(decideLegacyImport('5', '6')).toEqual({ value: '6', isNew: true });
    expect(decideLegacyImport('9', '10')).toEqual({ value: '10', isNew: true });
  });

  it('keeps the higher value the checksum already holds and answers it', () => {
    expect(decideLegacyImport('5', '3')).toEqual({ value: '5', isNew: false });
    // String order would call "9" the higher and keep it.
    expect(decideLegacyImport('10', '9')).toEqual({ value: '10', isNew: false });
    expect(decideLegacyImport('1.10', '1.9')).toEqual({ value: '1.10', isNew: false });
  });

  it('stores nothing new when the checksum already holds exactly that value', () => {
    expect(decideLegacyImport('5', '5')).toEqual({ value: '5', isNew: false });
    expect(decideLegacyImport('7', '07')).toEqual({ value: '7', isNew: false });
  });

  it('never answers below either the held or the imported value', () => {
    const rev = fc.array(fc.nat({ max: 12 }), { minLength: 1, maxLength: 3 }).map((parts) => parts.join('.'));
    fc.assert(
      fc.property(fc.option(rev), rev, (held, value) => {
        const decision = decideLegacyImport(held, value);
        expect(compareRevisions(decision.value, value)).toBeGreaterThanOrEqual(0);
        if (held !== null) expect(compareRevisions(decision.value, held)).toBeGreaterThanOrEqual(0);
        expect(decision.isNew).toBe(held === null || compareRevisions(value, held) > 0);
      }),
    );
  });
});

describe('decideChainedGetPr', () => {
  const local = (packageMax: string | null, first: string | null, last: string | null, subMax: string | null = null) => ({
    packageMax,
    checksumFirst: first,
    checksumLast: last,
    subMax,
  });
  const upstream = (packageMax: string | null, checksumValue: string | null = null) => ({ packageMax, checksumValue });

  it('keeps the first value of a known checksum in history mode without asking more', () => {
    expect(decideChainedGetPr(local('0.3', '0.1', '0.3'), upstream('5'), true)).toEqual({ value: '0.1', isNew: false });
  });

  it('moves a returning checksum above the local maximum in no-history mode', () => {
    expect(decideChainedGetPr(local('0.1', '0.0', '0.0'), upstream('0', '0'), false)).toEqual({ value: '0.2', isNew: true });
  });

  it('keeps a known checksum that is both the local maximum and above upstream', () => {
    expect(decideChainedGetPr(local('0.3', '0.3', '0.3'), upstream('0'), false)).toEqual({ value: '0.3', isNew: false });
  });

  it('lifts a known checksum to the upstream maximum when upstream knows it', () => {
    expect(decideChainedGetPr(local('2', '0', '2'), upstream('3', '2'), false)).toEqual({ value: '3', isNew: true });
  });

  it('lifts a known checksum to upstream maximum .0 when upstream does not know it', () => {
    expect(decideChainedGetPr(local('1.1.1', '0.3.0', '0.3.2'), upstream('2'), false)).toEqual({ value: '2.0', isNew: true });
  });

  it('needs no upstream bound for a package upstream does not know', () => {
    expect(decideChainedGetPr(local('1', '0', '0'), upstream(null), false)).toEqual({ value: '2', isNew: true });
    expect(decideChainedGetPr(local('1', '0', '1'), upstream(null), false)).toEqual({ value: '1', isNew: false });
  });

  it('allocates locally when neither the checksum nor the package is known upstream', () => {
    expect(decideChainedGetPr(local(null, null, null), upstream(null), false)).toEqual({ value: '0', isNew: true });
    expect(decideChainedGetPr(local('9', null, null), upstream(null), true)).toEqual({ value: '10', isNew: true });
  });

  it('takes the upstream value of a checksum new locally but known upstream', () => {
    expect(decideChainedGetPr(local('0.2', null, null), upstream('1', '0'), false)).toEqual({ value: '0', isNew: true });
  });

  it('mints the next sub-revision under the upstream maximum for a new checksum', () => {
    expect(decideChainedGetPr(local('0', null, null), upstream('0'), false)).toEqual({ value: '0.0', isNew: true });
    expect(decideChainedGetPr(local('0.0', null, null, '0.0'), upstream('0'), false)).toEqual({ value: '0.1', isNew: true });
    expect(decideChainedGetPr(local('0.3.1', null, null, '0.3.1'), upstream('0.3'), false)).toEqual({ value: '0.3.2', isNew: true });
    expect(decideChainedGetPr(local('0.9', null, null, '0.9'), upstream('0'), true)).toEqual({ value: '0.10', isNew: true });
  });
});
