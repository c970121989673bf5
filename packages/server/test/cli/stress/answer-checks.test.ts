import { describe, expect, it } from 'vitest';
import {
  CHECK_NAMES,
  checkGapFree,
  checkHistoryStable,
  checkMonotonicInTime,
  checkReadBack,
  checkUniqueValues,
  checkWellFormed,
  createAnswerLog,
  runAnswerChecks,
} from '../../../src/cli/stress/answer-checks.js';

type Answer = Parameters<typeof createAnswerLog>[0]['answers'][number];

/** One request of package `p`, one millisecond long unless told, back to back by default. */
function ask(checksum: string, value: string, start: number, end = start + 1, pkg = 'p'): Answer {
  return { pkg, checksum, value, start, end };
}

describe('well-formed', () => {
  it('holds when no answer was malformed, and fails naming the first one', () => {
    const answers = [ask('a', '0', 0)];
    expect(checkWellFormed(createAnswerLog({ mode: 'history', answers }))).toMatchObject({ name: 'well-formed', ok: true });
    const broken = createAnswerLog({ mode: 'history', answers, malformed: { count: 2, first: 'get-pr answered {"value":0}: a PR is a string' } });
    expect(checkWellFormed(broken)).toEqual({ name: 'well-formed', ok: false, detail: '2 violations: get-pr answered {"value":0}: a PR is a string' });
  });
});

describe('history-stable', () => {
  it('holds when a checksum asked again gets its first answer', () => {
    const log = createAnswerLog({ mode: 'history', answers: [ask('a', '0', 0), ask('b', '1', 2), ask('a', '0', 4)] });
    expect(checkHistoryStable(log)).toMatchObject({ name: 'history-stable', ok: true });
  });

  it('fails when a checksum changes its answer in history mode', () => {
    const log = createAnswerLog({ mode: 'history', answers: [ask('a', '0', 0), ask('b', '1', 2), ask('a', '2', 4)] });
    const result = checkHistoryStable(log);
    expect(result.ok).toBe(false);
    expect(result.detail).toMatch(/1 violation: checksum a of p answered "0" .* later "2"/);
  });

  it('does not apply in no-history mode, where returning checksums move up', () => {
    const log = createAnswerLog({ mode: 'nohist', answers: [ask('a', '0', 0), ask('b', '1', 2), ask('a', '2', 4)] });
    expect(checkHistoryStable(log)).toMatchObject({ ok: true, detail: expect.stringMatching(/^not applicable/) });
  });
});

describe('unique-values', () => {
  it('holds when every value of a package belongs to one checksum', () => {
    const log = createAnswerLog({
      mode: 'nohist',
      answers: [ask('a', '0', 0), ask('b', '1', 2), ask('a', '2', 4), ask('a', '2', 6), ask('c', '0', 0, 1, 'other')],
    });
    expect(checkUniqueValues(log)).toMatchObject({ name: 'unique-values', ok: true });
  });

  it('fails when one value goes to two checksums of a package', () => {
    const log = createAnswerLog({ mode: 'history', answers: [ask('a', '0', 0), ask('b', '1', 2), ask('c', '1', 4)] });
    const result = checkUniqueValues(log);
    expect(result.ok).toBe(false);
    expect(result.detail).toBe('1 violation: p: "1" went to checksums b and c');
  });
});

describe('gap-free', () => {
  it('holds when a package answered exactly 0..n-1', () => {
    const log = createAnswerLog({ mode: 'history', answers: [ask('a', '0', 0), ask('b', '1', 2), ask('c', '2', 4), ask('a', '0', 6)] });
    expect(checkGapFree(log)).toMatchObject({ name: 'gap-free', ok: true });
  });

  it('fails when a value is skipped', () => {
    const log = createAnswerLog({ mode: 'history', answers: [ask('a', '0', 0), ask('b', '1', 2), ask('c', '3', 4)] });
    const result = checkGapFree(log);
    expect(result.ok).toBe(false);
    expect(result.detail).toBe('1 violation: p: 3 values from 0 to 3, missing 2');
  });

  it('counts from above what the package held before the run', () => {
    const answers = [ask('a', '5', 0), ask('b', '6', 2)];
    expect(checkGapFree(createAnswerLog({ mode: 'history', answers, baseline: { p: '4' } })).ok).toBe(true);
    const above3 = checkGapFree(createAnswerLog({ mode: 'history', answers, baseline: { p: '3' } }));
    expect(above3).toMatchObject({ ok: false, detail: expect.stringContaining('(above "3" held before the run), missing 4') });
    const above5 = checkGapFree(createAnswerLog({ mode: 'history', answers, baseline: { p: '5' } }));
    expect(above5).toMatchObject({ ok: false, detail: expect.stringContaining('but values start at 6') });
  });

  it('fails on a PR that is not a number it can count', () => {
    const log = createAnswerLog({ mode: 'history', answers: [ask('a', '0', 0), ask('b', '1234567890123456', 2)] });
    expect(checkGapFree(log)).toMatchObject({ ok: false, detail: expect.stringContaining('"1234567890123456" is not a plain integer PR') });
  });

  it('does not judge a package whose request failed (the lost answer may hold the missing value)', () => {
    const log = createAnswerLog({
      mode: 'history',
      answers: [ask('a', '0', 0), ask('c', '2', 4)],
      failed: [{ pkg: 'p', checksum: 'b' }],
    });
    expect(checkGapFree(log)).toMatchObject({ ok: true, detail: expect.stringContaining('1 package with failed requests not judged') });
  });
});

describe('read-back', () => {
  const answers = [ask('a', '0', 0), ask('b', '1', 2), ask('a', '2', 4)];

  it('holds when test-pr gives the greatest answer (no-history) and max-package-pr the package greatest', () => {
    const log = createAnswerLog({ mode: 'nohist', answers, readBack: { testPr: { a: '2', b: '1' }, maxPackagePr: { p: '2' } } });
    expect(checkReadBack(log)).toMatchObject({ name: 'read-back', ok: true });
  });

  it('holds when test-pr gives the first answer in history mode', () => {
    const history = [ask('a', '0', 0), ask('b', '1', 2), ask('a', '0', 4)];
    const log = createAnswerLog({ mode: 'history', answers: history, readBack: { testPr: { a: '0', b: '1' }, maxPackagePr: { p: '1' } } });
    expect(checkReadBack(log).ok).toBe(true);
  });

  it('fails when test-pr or max-package-pr disagree with the answers', () => {
    const log = createAnswerLog({ mode: 'nohist', answers, readBack: { testPr: { a: '0', b: '1' }, maxPackagePr: { p: '1' } } });
    const result = checkReadBack(log);
    expect(result.ok).toBe(false);
    expect(result.detail).toBe(
      '2 violations: test-pr of checksum a of p is "0", expected its greatest answer "2"; max-package-pr of p is "1", expected "2"',
    );
  });

  it('fails when a checksum that was answered reads back as unknown', () => {
    const log = createAnswerLog({ mode: 'history', answers, readBack: { testPr: { a: null, b: '1' }, maxPackagePr: { p: '2' } } });
    expect(checkReadBack(log)).toMatchObject({ ok: false, detail: expect.stringContaining('test-pr of checksum a of p is null') });
  });

  it('only asks "at least" where a request failed', () => {
    const log = createAnswerLog({
      mode: 'nohist',
      answers,
      failed: [{ pkg: 'p', checksum: 'a' }],
      readBack: { testPr: { a: '3', b: '1' }, maxPackagePr: { p: '3' } },
    });
    expect(checkReadBack(log).ok).toBe(true);
  });
});

describe('monotonic-in-time', () => {
  it('holds when a new checksum asked after another was answered gets a greater value', () => {
    const log = createAnswerLog({ mode: 'history', answers: [ask('a', '0', 0, 1), ask('b', '1', 2, 3)] });
    expect(checkMonotonicInTime(log)).toMatchObject({ name: 'monotonic-in-time', ok: true });
  });

  it('lets requests in flight together be served in either order', () => {
    // b started before a's answer arrived: the server may have served b first.
    const log = createAnswerLog({ mode: 'history', answers: [ask('a', '1', 0, 5), ask('b', '0', 2, 3)] });
    expect(checkMonotonicInTime(log).ok).toBe(true);
  });

  it('fails when a new checksum asked after another was answered gets a smaller value', () => {
    const log = createAnswerLog({ mode: 'history', answers: [ask('a', '1', 0, 1), ask('b', '0', 2, 3)] });
    const result = checkMonotonicInTime(log);
    expect(result.ok).toBe(false);
    expect(result.detail).toMatch(/^1 violation: new checksum b of p got "0" .* not above "1"/);
  });

  it('fails in no-history mode when an answer goes below one already received for the package', () => {
    // a returning checksum must get the package's greatest or above: "0" after "1" went back.
    const log = createAnswerLog({ mode: 'nohist', answers: [ask('a', '0', 0, 1), ask('b', '1', 2, 3), ask('a', '0', 4, 5)] });
    const result = checkMonotonicInTime(log);
    expect(result.ok).toBe(false);
    expect(result.detail).toMatch(/checksum a of p is below the package: "0" .* after "1"/);
  });

  it('fails in history mode when a checksum answers differently after an earlier answer arrived', () => {
    const log = createAnswerLog({ mode: 'history', answers: [ask('a', '0', 0, 1), ask('b', '1', 2, 3), ask('a', '2', 4, 5)] });
    expect(checkMonotonicInTime(log)).toMatchObject({ ok: false, detail: expect.stringContaining('checksum a of p changed') });
  });
});

describe('runAnswerChecks', () => {
  it('reports every check by name, in order', () => {
    const log = createAnswerLog({
      mode: 'nohist',
      answers: [ask('a', '0', 0), ask('b', '1', 2), ask('a', '2', 4)],
      readBack: { testPr: { a: '2', b: '1' }, maxPackagePr: { p: '2' } },
    });
    const results = runAnswerChecks(log);
    expect(results.map((result) => result.name)).toEqual([...CHECK_NAMES]);
    expect(results.every((result) => result.ok)).toBe(true);
  });

  it('compares revisions as numbers, not strings', () => {
    const answers = Array.from({ length: 12 }, (_, index) => ask(`c${index}`, String(index), index * 2));
    const log = createAnswerLog({ mode: 'history', answers, readBack: { testPr: {}, maxPackagePr: { p: '11' } } });
    expect(runAnswerChecks(log).filter((result) => !result.ok)).toEqual([]);
  });
});

describe('monotonic-in-time: a no-history checksum that still holds its package’s greatest', () => {
  it('fails when it moves though nothing was asked of its package in between', () => {
    const log = createAnswerLog({ mode: 'nohist', answers: [ask('a', '0', 0), ask('b', '1', 2), ask('b', '2', 4)] });
    expect(checkMonotonicInTime(log)).toMatchObject({ ok: false, detail: expect.stringContaining('checksum b of p moved from "1"') });
  });

  it('holds when it keeps its PR, when another request ran in between, or when it was not the greatest', () => {
    const kept = [ask('a', '0', 0), ask('b', '1', 2), ask('b', '1', 4)];
    // c's request overlaps both of b's: it may have come between them.
    const overlapped = [ask('a', '0', 0), ask('b', '1', 2, 3), ask('c', '2', 2.5, 6), ask('b', '3', 4, 5)];
    const below = [ask('a', '0', 0), ask('b', '1', 2), ask('a', '2', 4)];
    for (const answers of [kept, overlapped, below]) expect(checkMonotonicInTime(createAnswerLog({ mode: 'nohist', answers })).ok).toBe(true);
  });
});

describe('packages holding dotted revisions (a chained server’s numbering)', () => {
  // As docs/protocol.md §7 allows once the upstream knows package q: a new checksum gets the
  // upstream's 4.1 below the local 36, and c5 gets the upstream's 1, which c1 holds too.
  const chained = [
    ask('c1', '36', 0, 1, 'q'),
    ask('c2', '4.1', 2, 3, 'q'),
    ask('c1', '1', 4, 5, 'q'),
    ask('c5', '1', 6, 7, 'q'),
  ];

  it('leaves them out of unique-values, gap-free and monotonic-in-time, and says so', () => {
    const results = runAnswerChecks(createAnswerLog({ mode: 'nohist', answers: chained }));
    for (const name of ['unique-values', 'gap-free', 'monotonic-in-time'] as const) {
      expect(results.find((result) => result.name === name)).toMatchObject({
        ok: true,
        detail: expect.stringContaining('1 package with dotted revisions (an upstream\'s numbering) not judged'),
      });
    }
  });

  it('still judges the other packages of the run', () => {
    const results = runAnswerChecks(createAnswerLog({ mode: 'nohist', answers: [...chained, ask('a', '0', 8), ask('b', '0', 10)] }));
    expect(results.find((result) => result.name === 'unique-values')).toMatchObject({ ok: false, detail: expect.stringContaining('p: "0" went to checksums a and b') });
  });
});
