import { describe, expect, it } from 'vitest';
import type { AllocationRequest } from '../../src/engine/batch-allocation.js';
import { OwnStores, SeenFactsGate } from '../../src/engine/seen-facts.js';

const unknown = { packageMax: null, checksumFirst: null, checksumLast: null };

function request(version: string, checksum: string, packageMax: string | null): AllocationRequest {
  return { version, pkgarch: 'core2-64', checksum, history: true, seen: { ...unknown, packageMax } };
}

describe('OwnStores', () => {
  it('raises a package maximum a lookup saw to the greatest revision stored since', () => {
    const own = new OwnStores();
    own.note([
      { version: '1.0-r0', pkgarch: 'core2-64', value: '4' },
      { version: '1.0-r0', pkgarch: 'core2-64', value: '5' },
      { version: '2.0-r0', pkgarch: 'core2-64', value: '0.9' },
    ]);
    const facts = own.seenFacts([
      request('1.0-r0', 'a', '3'),
      // Seen after our store, and above it (another writer): kept.
      request('1.0-r0', 'b', '7'),
      // Dotted revisions compare by component: 0.10 is above 0.9.
      request('2.0-r0', 'c', '0.10'),
      request('2.0-r0', 'd', null),
      request('3.0-r0', 'e', null),
    ]);
    expect(facts!.map((fact) => fact.packageMax)).toEqual(['5', '7', '0.10', '0.9', null]);
    // Only the package maximum is corrected; the checksum's facts are the lookup's.
    expect(facts![0]).toEqual({ ...unknown, packageMax: '5' });
  });

  it('keeps a package apart from another whose version and pkgarch spell the same text', () => {
    const own = new OwnStores();
    own.note([{ version: '1.0-r', pkgarch: '0core2-64', value: '9' }]);
    expect(own.seenFacts([request('1.0-r0', 'a', null)])![0]!.packageMax).toBeNull();
  });

  it('gives no facts for a batch in which one request brings none', () => {
    const own = new OwnStores();
    const bare: AllocationRequest = { version: '1.0-r0', pkgarch: 'core2-64', checksum: 'x', history: false };
    expect(own.seenFacts([request('1.0-r0', 'a', '1'), bare])).toBeUndefined();
  });

  it('forgets everything once it remembers too many packages, and goes on noting', () => {
    const own = new OwnStores();
    const rows = Array.from({ length: 10_000 }, (_, index) => ({ version: `v${index}`, pkgarch: 'core2-64', value: '1' }));
    own.note(rows);
    expect(own.seenFacts([request('v0', 'a', null)])![0]!.packageMax).toBe('1');
    own.note([{ version: 'late', pkgarch: 'core2-64', value: '2' }]);
    expect(own.seenFacts([request('v0', 'a', null)])![0]!.packageMax).toBeNull();
    expect(own.seenFacts([request('late', 'a', null)])![0]!.packageMax).toBe('2');
  });
});

describe('SeenFactsGate', () => {
  const tries = (gate: SeenFactsGate, count: number) => Array.from({ length: count }, () => gate.shouldTry());

  it('keeps trying while tries hold, or miss now and then', () => {
    const gate = new SeenFactsGate();
    for (let round = 0; round < 10; round += 1) {
      expect(gate.shouldTry()).toBe(true);
      gate.record(false);
      expect(gate.shouldTry()).toBe(true);
      gate.record(false);
      expect(gate.shouldTry()).toBe(true);
      gate.record(true);
    }
  });

  it('pauses for 32 batches after 3 misses in a row, then tries again', () => {
    const gate = new SeenFactsGate();
    for (let miss = 0; miss < 3; miss += 1) {
      expect(gate.shouldTry()).toBe(true);
      gate.record(false);
    }
    expect(tries(gate, 32)).toEqual(Array.from({ length: 32 }, () => false));
    expect(gate.shouldTry()).toBe(true);
    // The count of misses started afresh: one more miss does not pause again.
    gate.record(false);
    expect(gate.shouldTry()).toBe(true);
  });
});
