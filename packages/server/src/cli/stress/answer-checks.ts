import { compareRevisions } from '@prserv/core';
import { formatCount } from './format-count.js';

/** Names of the checks {@link runAnswerChecks} runs, in the order it reports them. */
export const CHECK_NAMES = ['well-formed', 'history-stable', 'unique-values', 'gap-free', 'read-back', 'monotonic-in-time'] as const;
/** One of {@link CHECK_NAMES}. */
export type CheckName = (typeof CHECK_NAMES)[number];

/** The verdict of one check. `detail` says what was checked, or the first violations found. */
export interface CheckResult {
  readonly name: CheckName;
  readonly ok: boolean;
  readonly detail: string;
}

/** How the server allocated: history (a checksum keeps its first PR) or no-history (PRs never go down). */
export type AllocationMode = 'history' | 'nohist';

/**
 * Every get-pr answer of a stress run, column by column (a run records tens of thousands; one
 * object each would cost more than the request). Index `i` of the per-answer columns describes
 * answer `i`. Times are milliseconds on one clock (`performance.now()`); a request starts before
 * its line is written and ends when its answer has been read.
 */
export interface AnswerLog {
  /** How the server allocated for these requests (legacy runs: what the server showed). */
  readonly mode: AllocationMode;
  /** Why `mode` is what it is, when that is not obvious (legacy runs). Shown in details. */
  readonly modeNote?: string;
  /** Package names (`version/pkgarch`), by package index. */
  readonly packageNames: readonly string[];
  /** Checksums, by checksum id. */
  readonly checksumNames: readonly string[];
  /** The package index of each checksum id. */
  readonly checksumPackage: ArrayLike<number>;
  /** Number of answers. */
  readonly count: number;
  /** Per answer: the checksum id asked. */
  readonly checksumOf: ArrayLike<number>;
  /** Per answer: 1 when the request asked a checksum nobody had asked before, else 0. */
  readonly fresh: ArrayLike<number>;
  /** Per answer: the PR answered, as a string ("3"; legacy integers are turned into strings). */
  readonly values: readonly string[];
  /** Per answer: when the request started. */
  readonly startedAt: ArrayLike<number>;
  /** Per answer: when its answer arrived. */
  readonly endedAt: ArrayLike<number>;
  /**
   * Per package: its greatest PR before the run (max-package-pr), or null when it was unknown.
   * `undefined` where it could not be read (the package is then judged like one with a failed
   * request). Absent: every package was unknown, as with a fresh package prefix.
   */
  readonly baseline?: readonly (string | null | undefined)[];
  /**
   * Checksum ids of requests that failed (invoke-error, dropped connection): the server may
   * have stored a value nobody saw, so their packages are not held to gap-free and their
   * read-back only has to be at least what was seen.
   */
  readonly failedChecksums: ReadonlySet<number>;
  /**
   * get-pr answers that were not what the protocol asks for: no PR at all (`"r1"`, null), or a
   * PR of the wrong JSON type for the request (an integer to a modern request, a string to a
   * legacy one for a plain PR). Absent: none.
   */
  readonly malformed?: { readonly count: number; readonly first: string | null };
  /**
   * What the server said after the load, same history flag: test-pr by checksum id and
   * max-package-pr by package index; `undefined` where the read-back request itself failed.
   * Absent: no read-back was made.
   */
  readonly readBack?: {
    readonly testPr: readonly (string | null | undefined)[];
    readonly maxPackagePr: readonly (string | null | undefined)[];
  };
}

/** Runs every check of {@link CHECK_NAMES} on a log. Pure: the log is only read. */
export function runAnswerChecks(log: AnswerLog): CheckResult[] {
  const facts = new LogFacts(log);
  return [
    checkWellFormed(log),
    judgeHistoryStable(log, facts),
    judgeUniqueValues(log, facts),
    judgeGapFree(log, facts),
    judgeReadBack(log, facts),
    judgeMonotonicInTime(log, facts),
  ];
}

/** At most this many violations are spelled out in a detail; the rest are counted. */
const SHOWN_VIOLATIONS = 3;

/** Collects violations and turns them into one detail line. */
class Violations {
  readonly #shown: string[] = [];
  count = 0;

  add(text: () => string): void {
    this.count += 1;
    if (this.#shown.length < SHOWN_VIOLATIONS) this.#shown.push(text());
  }

  result(name: CheckName, okDetail: string): CheckResult {
    if (this.count === 0) return { name, ok: true, detail: okDetail };
    const more = this.count > this.#shown.length ? `; and ${this.count - this.#shown.length} more` : '';
    return { name, ok: false, detail: `${plural(this.count, 'violation')}: ${this.#shown.join('; ')}${more}` };
  }
}

/** Derived per-checksum and per-package facts several checks share; computed once. */
class LogFacts {
  /** Per answer: the value as a number when it is a plain integer below 2^53, else NaN. */
  readonly numbers: Float64Array;
  /** Per checksum id: the answer that arrived first, or -1. */
  readonly firstAnswer: Int32Array;
  /** Per checksum id: the answer with the greatest value, or -1. */
  readonly greatestAnswer: Int32Array;
  /** Per package: the answer with the greatest value, or -1. */
  readonly packageGreatest: Int32Array;
  /** Per package: 1 when one of its requests failed or its baseline is unknown. */
  readonly packageFailed: Uint8Array;
  /**
   * Per package: 1 when it holds a dotted revision (in an answer or before the run): a chained
   * server's numbering of a package its upstream knows (docs/protocol.md §7), where one revision
   * may go to several checksums and a new checksum may get less than the local greatest. Such
   * packages are not judged by unique-values, gap-free and monotonic-in-time.
   */
  readonly packageDotted: Uint8Array;
  /** How many packages {@link packageDotted} marks. */
  readonly dottedCount: number;
  /** When the earliest request started: times in details count from here. */
  readonly origin: number;

  constructor(readonly log: AnswerLog) {
    const { count, values, checksumOf, checksumPackage, endedAt } = log;
    this.numbers = new Float64Array(count);
    let origin = Number.POSITIVE_INFINITY;
    for (let index = 0; index < count; index += 1) {
      if (log.startedAt[index]! < origin) origin = log.startedAt[index]!;
      const value = values[index]!;
      this.numbers[index] = value.length <= 15 && /^\d+$/.test(value) ? Number(value) : Number.NaN;
    }
    this.origin = count > 0 ? origin : 0;
    this.firstAnswer = new Int32Array(log.checksumNames.length).fill(-1);
    this.greatestAnswer = new Int32Array(log.checksumNames.length).fill(-1);
    this.packageGreatest = new Int32Array(log.packageNames.length).fill(-1);
    for (let index = 0; index < count; index += 1) {
      const checksum = checksumOf[index]!;
      const pkg = checksumPackage[checksum]!;
      const first = this.firstAnswer[checksum]!;
      if (first < 0 || endedAt[index]! < endedAt[first]!) this.firstAnswer[checksum] = index;
      const greatest = this.greatestAnswer[checksum]!;
      if (greatest < 0 || this.compareAnswers(index, greatest) > 0) this.greatestAnswer[checksum] = index;
      const packageGreatest = this.packageGreatest[pkg]!;
      if (packageGreatest < 0 || this.compareAnswers(index, packageGreatest) > 0) this.packageGreatest[pkg] = index;
    }
    this.packageFailed = new Uint8Array(log.packageNames.length);
    for (const checksum of log.failedChecksums) this.packageFailed[checksumPackage[checksum]!] = 1;
    log.baseline?.forEach((before, pkg) => {
      if (before === undefined) this.packageFailed[pkg] = 1;
    });
    this.packageDotted = new Uint8Array(log.packageNames.length);
    for (let index = 0; index < count; index += 1) {
      if (values[index]!.includes('.')) this.packageDotted[checksumPackage[checksumOf[index]!]!] = 1;
    }
    log.baseline?.forEach((before, pkg) => {
      if (before?.includes('.')) this.packageDotted[pkg] = 1;
    });
    this.dottedCount = this.packageDotted.reduce((sum, dotted) => sum + dotted, 0);
  }

  /** The words a check adds when dotted packages were left out. */
  get dottedNote(): string {
    return this.dottedCount > 0 ? `; ${plural(this.dottedCount, 'package')} with dotted revisions (an upstream's numbering) not judged` : '';
  }

  /** Orders two answers by value (revision order; plain integers take a fast path). */
  compareAnswers(left: number, right: number): number {
    const a = this.numbers[left]!;
    const b = this.numbers[right]!;
    if (a === a && b === b) return a - b; // neither is NaN
    return compareValues(this.log.values[left]!, this.log.values[right]!);
  }

  checksumLabel(checksum: number): string {
    return `checksum ${shortChecksum(this.log.checksumNames[checksum]!)} of ${this.log.packageNames[this.log.checksumPackage[checksum]!]}`;
  }

  answerLabel(index: number): string {
    const { values, startedAt, endedAt } = this.log;
    const since = (time: number) => (time - this.origin).toFixed(1);
    return `"${values[index]!}" (asked ${since(startedAt[index]!)}–${since(endedAt[index]!)} ms into the load)`;
  }
}

/** well-formed: every get-pr answer is a PR, of the JSON type the request asks for. */
export function checkWellFormed(log: AnswerLog): CheckResult {
  const name = 'well-formed';
  const malformed = log.malformed?.count ?? 0;
  if (malformed === 0) return { name, ok: true, detail: `${plural(log.count, 'answer')}, each a PR of the type the request asks for` };
  return { name, ok: false, detail: `${plural(malformed, 'violation')}: ${log.malformed?.first ?? 'an answer that is no PR'}` };
}

/**
 * history-stable: in history mode a checksum's answer never changes (docs/protocol.md §6.1: a known
 * checksum gets its first value). Not applicable in no-history mode, where a returning checksum
 * moves up when others were allocated since.
 */
export function checkHistoryStable(log: AnswerLog): CheckResult {
  return judgeHistoryStable(log, new LogFacts(log));
}

function judgeHistoryStable(log: AnswerLog, facts: LogFacts): CheckResult {
  const name = 'history-stable';
  if (log.mode !== 'history') {
    return { name, ok: true, detail: `not applicable: ${log.modeNote ?? 'no-history mode'}, where a returning checksum may move up` };
  }
  const violations = new Violations();
  const reported = new Uint8Array(log.checksumNames.length);
  let repeated = 0;
  const seenTwice = new Uint8Array(log.checksumNames.length);
  for (let index = 0; index < log.count; index += 1) {
    const checksum = log.checksumOf[index]!;
    const first = facts.firstAnswer[checksum]!;
    if (index === first) continue;
    if (!seenTwice[checksum]) {
      seenTwice[checksum] = 1;
      repeated += 1;
    }
    if (log.values[index] !== log.values[first] && !reported[checksum]) {
      reported[checksum] = 1;
      violations.add(() => `${facts.checksumLabel(checksum)} answered ${facts.answerLabel(first)}, later ${facts.answerLabel(index)}`);
    }
  }
  const note = log.modeNote ? ` (${log.modeNote})` : '';
  return violations.result(name, `${plural(repeated, 'checksum')} asked more than once, each always got the same answer${note}`);
}

/**
 * unique-values: within a package no value goes to two checksums. Holds in both modes: every
 * freshly allocated value is above the package's greatest (docs/protocol.md §6.5).
 */
export function checkUniqueValues(log: AnswerLog): CheckResult {
  return judgeUniqueValues(log, new LogFacts(log));
}

function judgeUniqueValues(log: AnswerLog, facts: LogFacts): CheckResult {
  const name = 'unique-values';
  const owners = log.packageNames.map(() => new Map<string, number>());
  const violations = new Violations();
  const reported = new Set<string>();
  let distinct = 0;
  for (let index = 0; index < log.count; index += 1) {
    const checksum = log.checksumOf[index]!;
    const pkg = log.checksumPackage[checksum]!;
    if (facts.packageDotted[pkg]) continue;
    const value = log.values[index]!;
    const owner = owners[pkg]!.get(value);
    if (owner === undefined) {
      owners[pkg]!.set(value, checksum);
      distinct += 1;
    } else if (owner !== checksum && !reported.has(`${pkg}/${value}`)) {
      reported.add(`${pkg}/${value}`);
      violations.add(
        () =>
          `${log.packageNames[pkg]}: "${value}" went to checksums ${shortChecksum(log.checksumNames[owner]!)} and ${shortChecksum(log.checksumNames[checksum]!)}`,
      );
    }
  }
  return violations.result(name, `${plural(distinct, 'value')} in ${plural(countUsedPackages(log) - facts.dottedCount, 'package')}, each held by one checksum${facts.dottedNote}`);
}

/**
 * gap-free: per package, the values answered are exactly 0..n-1, or, for a package that held
 * PRs before the run, exactly the n integers above its greatest. Every allocation is answered to
 * the request that caused it, so a missing value means the server skipped one. Packages with a
 * failed request are not judged (the lost answer may hold the missing value).
 */
export function checkGapFree(log: AnswerLog): CheckResult {
  return judgeGapFree(log, new LogFacts(log));
}

function judgeGapFree(log: AnswerLog, facts: LogFacts): CheckResult {
  const name = 'gap-free';
  const violations = new Violations();
  const seen = log.packageNames.map(() => new Set<number>());
  const nonInteger = new Uint8Array(log.packageNames.length);
  for (let index = 0; index < log.count; index += 1) {
    const pkg = log.checksumPackage[log.checksumOf[index]!]!;
    if (facts.packageFailed[pkg] || facts.packageDotted[pkg]) continue;
    const number = facts.numbers[index]!;
    if (Number.isNaN(number)) {
      if (!nonInteger[pkg]) {
        nonInteger[pkg] = 1;
        violations.add(() => `${log.packageNames[pkg]}: "${log.values[index]}" is not a plain integer PR`);
      }
      continue;
    }
    seen[pkg]!.add(number);
  }
  let judged = 0;
  let skipped = 0;
  for (let pkg = 0; pkg < log.packageNames.length; pkg += 1) {
    const values = seen[pkg]!;
    if (facts.packageFailed[pkg]) {
      skipped += 1;
      continue;
    }
    if (nonInteger[pkg] || facts.packageDotted[pkg] || values.size === 0) continue;
    judged += 1;
    const before = log.baseline?.[pkg] ?? null;
    if (before !== null && !/^\d{1,15}$/.test(before)) {
      violations.add(() => `${log.packageNames[pkg]}: held "${before}" before the run; gap-free needs plain integer PRs`);
      continue;
    }
    const lowest = before === null ? 0 : Number(before) + 1;
    const highest = lowest + values.size - 1;
    let top = -1;
    let bottom = Number.POSITIVE_INFINITY;
    for (const value of values) {
      if (value > top) top = value;
      if (value < bottom) bottom = value;
    }
    if (bottom === lowest && top === highest) continue;
    const missing: number[] = [];
    for (let value = lowest; value <= top && missing.length < 3; value += 1) if (!values.has(value)) missing.push(value);
    const range = `${plural(values.size, 'value')} from ${bottom} to ${top}`;
    const start = before === null ? '' : ` (above "${before}" held before the run)`;
    violations.add(() =>
      bottom < lowest
        ? `${log.packageNames[pkg]}: ${range}, but values start at ${lowest}${start}`
        : `${log.packageNames[pkg]}: ${range}${start}, missing ${missing.join(', ')}${missing.length === 3 ? ', …' : ''}`,
    );
  }
  const notJudged = skipped > 0 ? `; ${plural(skipped, 'package')} with failed requests not judged` : '';
  return violations.result(name, `${plural(judged, 'package')}, each answered a gap-free run of values${notJudged}${facts.dottedNote}`);
}

/**
 * read-back: after the load, test-pr of each checksum equals its first answer (history mode) or
 * the greatest value it was answered (no-history); max-package-pr equals the greatest value
 * answered in the package. Where a request failed only "at least" can be asked.
 */
export function checkReadBack(log: AnswerLog): CheckResult {
  return judgeReadBack(log, new LogFacts(log));
}

function judgeReadBack(log: AnswerLog, facts: LogFacts): CheckResult {
  const name = 'read-back';
  const readBack = log.readBack;
  if (!readBack) return { name, ok: true, detail: 'not run: the load got no answer' };
  const violations = new Violations();
  let compared = 0;
  let unread = 0;
  for (let checksum = 0; checksum < log.checksumNames.length; checksum += 1) {
    const actual = readBack.testPr[checksum];
    if (actual === undefined) {
      unread += 1;
      continue;
    }
    const failed = log.failedChecksums.has(checksum);
    const expectedAt = log.mode === 'history' ? facts.firstAnswer[checksum]! : facts.greatestAnswer[checksum]!;
    if (expectedAt < 0) continue; // never answered: only failed requests asked it
    const expected = log.values[expectedAt]!;
    compared += 1;
    const holds =
      actual !== null &&
      (log.mode === 'history' || !failed ? actual === expected || compareValues(actual, expected) === 0 : compareValues(actual, expected) >= 0);
    if (!holds) {
      const wanted = log.mode === 'history' ? 'its first answer' : failed ? 'at least its greatest answer' : 'its greatest answer';
      violations.add(() => `test-pr of ${facts.checksumLabel(checksum)} is ${JSON.stringify(actual)}, expected ${wanted} "${expected}"`);
    }
  }
  for (let pkg = 0; pkg < log.packageNames.length; pkg += 1) {
    const actual = readBack.maxPackagePr[pkg];
    if (actual === undefined) {
      unread += 1;
      continue;
    }
    const greatest = facts.packageGreatest[pkg]!;
    const expected = greatest >= 0 ? log.values[greatest]! : (log.baseline?.[pkg] ?? null);
    compared += 1;
    const failed = facts.packageFailed[pkg] === 1;
    const holds =
      expected === null
        ? actual === null || failed
        : actual !== null && (failed ? compareValues(actual, expected) >= 0 : compareValues(actual, expected) === 0);
    if (!holds) {
      violations.add(
        () =>
          `max-package-pr of ${log.packageNames[pkg]} is ${JSON.stringify(actual)}, expected ${failed ? 'at least ' : ''}${JSON.stringify(expected)}`,
      );
    }
  }
  const notRead = unread > 0 ? `; ${plural(unread, 'read-back request')} failed and were not judged` : '';
  return violations.result(name, `${plural(compared, 'test-pr and max-package-pr answer')} match the load's answers${notRead}`);
}

/**
 * monotonic-in-time: answers agree with the order in which requests completed (docs/protocol.md §6.5:
 * results equal some one-at-a-time order consistent with real time). For a request that started
 * after other requests of its package had been answered:
 * - a checksum nobody had asked before gets a value above every one of those answers;
 * - no-history: any answer is at least every one of those answers (a get-pr answer is the
 *   package's greatest or above it);
 * - history: a checksum's answer equals its answers already received.
 */
export function checkMonotonicInTime(log: AnswerLog): CheckResult {
  return judgeMonotonicInTime(log, new LogFacts(log));
}

function judgeMonotonicInTime(log: AnswerLog, facts: LogFacts): CheckResult {
  const name = 'monotonic-in-time';
  const { count, startedAt, endedAt, checksumOf, checksumPackage, fresh } = log;
  const byStart = sortedIndices(count, startedAt);
  const byEnd = sortedIndices(count, endedAt);
  // Per package: the greatest answer completed so far; per checksum: the answers completed so far.
  const packageTop = new Int32Array(log.packageNames.length).fill(-1);
  const checksumLow = new Int32Array(log.checksumNames.length).fill(-1);
  const checksumTop = new Int32Array(log.checksumNames.length).fill(-1);
  const violations = new Violations();
  let done = 0;
  for (let position = 0; position < count; position += 1) {
    const later = byStart[position]!;
    const start = startedAt[later]!;
    while (done < count && endedAt[byEnd[done]!]! < start) {
      const earlier = byEnd[done]!;
      done += 1;
      const checksum = checksumOf[earlier]!;
      const pkg = checksumPackage[checksum]!;
      if (packageTop[pkg]! < 0 || facts.compareAnswers(earlier, packageTop[pkg]!) > 0) packageTop[pkg] = earlier;
      if (checksumTop[checksum]! < 0 || facts.compareAnswers(earlier, checksumTop[checksum]!) > 0) checksumTop[checksum] = earlier;
      if (checksumLow[checksum]! < 0 || facts.compareAnswers(earlier, checksumLow[checksum]!) < 0) checksumLow[checksum] = earlier;
    }
    const checksum = checksumOf[later]!;
    if (facts.packageDotted[checksumPackage[checksum]!]) continue;
    const top = packageTop[checksumPackage[checksum]!]!;
    const label = () => facts.checksumLabel(checksum);
    if (fresh[later] && top >= 0 && facts.compareAnswers(later, top) <= 0) {
      violations.add(() => `new ${label()} got ${facts.answerLabel(later)}, not above ${facts.answerLabel(top)} answered before it started`);
    } else if (log.mode === 'nohist' && top >= 0 && facts.compareAnswers(later, top) < 0) {
      const what = checksumTop[checksum]! >= 0 && facts.compareAnswers(later, checksumTop[checksum]!) < 0 ? 'went down' : 'is below the package';
      const reference = what === 'went down' ? checksumTop[checksum]! : top;
      violations.add(() => `${label()} ${what}: ${facts.answerLabel(later)} after ${facts.answerLabel(reference)}`);
    } else if (log.mode === 'history' && checksumTop[checksum]! >= 0) {
      const low = checksumLow[checksum]!;
      const high = checksumTop[checksum]!;
      if (facts.compareAnswers(later, low) !== 0 || facts.compareAnswers(later, high) !== 0) {
        const other = facts.compareAnswers(later, low) !== 0 ? low : high;
        violations.add(() => `${label()} changed: ${facts.answerLabel(later)} after ${facts.answerLabel(other)}`);
      }
    }
  }
  if (log.mode === 'nohist') judgeKeptWhileGreatest(log, facts, violations);
  const note = log.modeNote ? ` (${log.modeNote})` : '';
  return violations.result(name, `${plural(count, 'answer')} agree with the order requests completed in${note}${facts.dottedNote}`);
}

/**
 * No-history: a checksum asked again while it still holds its package's greatest PR keeps it, as
 * nothing newer moved above it (docs/protocol.md §6.1). Judged only where no other request could
 * have come between: the request just before it in its package was the same checksum's, answered
 * the package's greatest, and no other request of the package ran during either. Packages with a
 * failed request are left out (a lost answer may have moved the package).
 */
function judgeKeptWhileGreatest(log: AnswerLog, facts: LogFacts, violations: Violations): void {
  const { count, startedAt, endedAt, checksumOf, checksumPackage, values } = log;
  const byPackage: number[][] = log.packageNames.map(() => []);
  for (let index = 0; index < count; index += 1) byPackage[checksumPackage[checksumOf[index]!]!]!.push(index);
  for (let pkg = 0; pkg < byPackage.length; pkg += 1) {
    if (facts.packageFailed[pkg] || facts.packageDotted[pkg]) continue;
    const list = byPackage[pkg]!.sort((a, b) => startedAt[a]! - startedAt[b]! || a - b);
    const before = log.baseline?.[pkg] ?? null;
    // Over list[0..k-1]: the latest end, and the answer with the greatest value.
    let latestEnd = Number.NEGATIVE_INFINITY;
    let top = -1;
    let latestEndBeforePrevious = Number.NEGATIVE_INFINITY;
    for (let k = 0; k < list.length; k += 1) {
      const later = list[k]!;
      if (k > 0) {
        const previous = list[k - 1]!;
        const alone =
          latestEndBeforePrevious <= startedAt[previous]! &&
          latestEnd < startedAt[later]! &&
          (k + 1 === list.length || startedAt[list[k + 1]!]! >= endedAt[later]!);
        const greatest = facts.compareAnswers(previous, top) === 0 && (before === null || compareValues(values[previous]!, before) > 0);
        if (alone && greatest && checksumOf[previous] === checksumOf[later] && values[later] !== values[previous]) {
          violations.add(
            () =>
              `${facts.checksumLabel(checksumOf[later]!)} moved from ${facts.answerLabel(previous)} to ${facts.answerLabel(later)}, though nothing was asked of its package in between and it held the package's greatest`,
          );
        }
      }
      latestEndBeforePrevious = latestEnd;
      if (endedAt[later]! > latestEnd) latestEnd = endedAt[later]!;
      if (top < 0 || facts.compareAnswers(later, top) > 0) top = later;
    }
  }
}

/**
 * Builds an {@link AnswerLog} from readable records: for hand-made logs in tests and tools.
 * `fresh` defaults to "the earliest-started request of its checksum".
 */
export function createAnswerLog(input: {
  readonly mode: AllocationMode;
  readonly modeNote?: string;
  readonly answers: readonly {
    readonly pkg: string;
    readonly checksum: string;
    readonly value: string;
    readonly start: number;
    readonly end: number;
    readonly fresh?: boolean;
  }[];
  /** Requests that failed, by package and checksum. */
  readonly failed?: readonly { readonly pkg: string; readonly checksum: string }[];
  readonly malformed?: { readonly count: number; readonly first: string | null };
  /** Greatest PR of a package before the run, by package name. */
  readonly baseline?: Readonly<Record<string, string | null>>;
  readonly readBack?: {
    readonly testPr: Readonly<Record<string, string | null>>;
    readonly maxPackagePr: Readonly<Record<string, string | null>>;
  };
}): AnswerLog {
  const packageNames: string[] = [];
  const checksumNames: string[] = [];
  const checksumPackage: number[] = [];
  const packageIds = new Map<string, number>();
  const checksumIds = new Map<string, number>();
  const packageId = (pkg: string) => {
    let id = packageIds.get(pkg);
    if (id === undefined) {
      id = packageNames.push(pkg) - 1;
      packageIds.set(pkg, id);
    }
    return id;
  };
  const checksumId = (pkg: string, checksum: string) => {
    const key = `${pkg}\n${checksum}`;
    let id = checksumIds.get(key);
    if (id === undefined) {
      id = checksumNames.push(checksum) - 1;
      checksumPackage.push(packageId(pkg));
      checksumIds.set(key, id);
    }
    return id;
  };
  const { answers } = input;
  const checksumOf = answers.map((answer) => checksumId(answer.pkg, answer.checksum));
  const failedChecksums = new Set((input.failed ?? []).map((failure) => checksumId(failure.pkg, failure.checksum)));
  for (const pkg of Object.keys(input.baseline ?? {})) packageId(pkg);
  const earliest = new Map<number, number>();
  answers.forEach((answer, index) => {
    const known = earliest.get(checksumOf[index]!);
    if (known === undefined || answer.start < answers[known]!.start) earliest.set(checksumOf[index]!, index);
  });
  const readBack = input.readBack;
  return {
    mode: input.mode,
    ...(input.modeNote === undefined ? {} : { modeNote: input.modeNote }),
    packageNames,
    checksumNames,
    checksumPackage,
    count: answers.length,
    checksumOf,
    fresh: answers.map((answer, index) => ((answer.fresh ?? earliest.get(checksumOf[index]!) === index) ? 1 : 0)),
    values: answers.map((answer) => answer.value),
    startedAt: answers.map((answer) => answer.start),
    endedAt: answers.map((answer) => answer.end),
    ...(input.baseline ? { baseline: packageNames.map((pkg) => input.baseline?.[pkg] ?? null) } : {}),
    failedChecksums,
    ...(input.malformed ? { malformed: input.malformed } : {}),
    ...(readBack
      ? {
          readBack: {
            testPr: checksumNames.map((checksum, id) =>
              lookup(readBack.testPr, checksum, packageNames[checksumPackage[id]!]!),
            ),
            maxPackagePr: packageNames.map((pkg) => readBack.maxPackagePr[pkg]),
          },
        }
      : {}),
  };
}

/** A hand-made read-back names a checksum alone, or `pkg/checksum` when checksums repeat across packages. */
function lookup(table: Readonly<Record<string, string | null>>, checksum: string, pkg: string): string | null | undefined {
  const qualified = `${pkg}/${checksum}`;
  return Object.hasOwn(table, qualified) ? table[qualified] : table[checksum];
}

/** Revision order; a value that is not a revision sorts below every revision (and equal to itself). */
function compareValues(left: string, right: string): number {
  if (left === right) return 0;
  const leftOk = REVISION.test(left);
  const rightOk = REVISION.test(right);
  if (leftOk && rightOk) return compareRevisions(left, right);
  return leftOk ? 1 : rightOk ? -1 : left < right ? -1 : 1;
}

const REVISION = /^\d+(?:\.\d+)*$/;

/** Answer indices ordered by `keys`; answers recorded as they arrive are already in end order. */
function sortedIndices(count: number, keys: ArrayLike<number>): Uint32Array {
  const indices = new Uint32Array(count);
  let sorted = true;
  for (let index = 0; index < count; index += 1) {
    indices[index] = index;
    if (index > 0 && keys[index]! < keys[index - 1]!) sorted = false;
  }
  return sorted ? indices : indices.sort((a, b) => keys[a]! - keys[b]! || a - b);
}

function countUsedPackages(log: AnswerLog): number {
  const used = new Uint8Array(log.packageNames.length);
  let total = 0;
  for (let index = 0; index < log.count; index += 1) {
    const pkg = log.checksumPackage[log.checksumOf[index]!]!;
    if (!used[pkg]) {
      used[pkg] = 1;
      total += 1;
    }
  }
  return total;
}

function shortChecksum(checksum: string): string {
  return checksum.length > 12 ? `${checksum.slice(0, 12)}…` : checksum;
}

function plural(count: number, noun: string): string {
  return `${formatCount(count)} ${noun}${count === 1 ? '' : 's'}`;
}
