import { describe, expect, it } from 'vitest';
import { type AllocationRequest, type ChecksumFacts, planAllocations } from '@prserv/core';

const unknown: ChecksumFacts = { packageMax: null, checksumFirst: null, checksumLast: null };
const pkgA = { version: '1.0-r0', pkgarch: 'core2-64' };
const pkgB = { version: '2.0-r0', pkgarch: 'core2-64' };

function ask(pkg: typeof pkgA, checksum: string, history = true): AllocationRequest {
  return { ...pkg, checksum, history };
}

describe('planAllocations', () => {
  it('numbers new checksums of one package gap-free in arrival order', () => {
    const plan = planAllocations([ask(pkgA, 'a'), ask(pkgA, 'b'), ask(pkgA, 'c')], [unknown, unknown, unknown]);
    expect(plan.decisions.map((d) => d.value)).toEqual(['0', '1', '2']);
    expect(plan.rows.map((row) => [row.checksum, row.value])).toEqual([['a', '0'], ['b', '1'], ['c', '2']]);
  });

  it('allocates a checksum asked twice in one batch once', () => {
    const plan = planAllocations([ask(pkgA, 'a'), ask(pkgA, 'b'), ask(pkgA, 'a')], [unknown, unknown, unknown]);
    expect(plan.decisions).toEqual([
      { value: '0', isNew: true },
      { value: '1', isNew: true },
      { value: '0', isNew: false },
    ]);
    expect(plan.rows).toHaveLength(2);
  });

  it('moves a returning checksum above the newer ones in no-history mode, once', () => {
    const plan = planAllocations(
      [ask(pkgA, 'a', false), ask(pkgA, 'b', false), ask(pkgA, 'a', false), ask(pkgA, 'a', false), ask(pkgA, 'a', true)],
      [unknown, unknown, unknown, unknown, unknown],
    );
    expect(plan.decisions.map((d) => `${d.value}${d.isNew ? '+' : ''}`)).toEqual(['0+', '1+', '2+', '2', '0']);
  });

  it('keeps packages apart and starts from the stored facts', () => {
    const stored: ChecksumFacts = { packageMax: '1.9', checksumFirst: null, checksumLast: null };
    const knownB: ChecksumFacts = { packageMax: '7', checksumFirst: '3', checksumLast: '5' };
    const plan = planAllocations(
      [ask(pkgA, 'x'), ask(pkgB, 'y', true), ask(pkgB, 'y', false), ask(pkgA, 'z')],
      [stored, knownB, knownB, stored],
    );
    expect(plan.decisions.map((d) => d.value)).toEqual(['1.10', '3', '8', '1.11']);
    expect(plan.rows.map((row) => `${row.version}/${row.checksum}=${row.value}`)).toEqual([
      '1.0-r0/x=1.10',
      '2.0-r0/y=8',
      '1.0-r0/z=1.11',
    ]);
  });

  it('keeps a checksum\'s first revision when a no-history read (which leaves it out) moves it up', () => {
    // Stored: a=0, b=1. No-history facts leave out the first revision; history facts the maximum.
    const nohistA: ChecksumFacts = { packageMax: '1', checksumFirst: null, checksumLast: '0' };
    const historyA: ChecksumFacts = { packageMax: null, checksumFirst: '0', checksumLast: null };
    const plan = planAllocations([ask(pkgA, 'a', false), ask(pkgA, 'a', true)], [nohistA, historyA]);
    expect(plan.decisions).toEqual([
      { value: '2', isNew: true },
      { value: '0', isNew: false },
    ]);
  });

  it('needs one facts entry per request', () => {
    expect(() => planAllocations([ask(pkgA, 'a')], [])).toThrow(RangeError);
  });
});
