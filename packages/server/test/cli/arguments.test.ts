import { describe, expect, it } from 'vitest';
import { checkCommandArguments } from '../../src/cli/arguments.js';
import { UsageError } from '../../src/cli/errors.js';

const OPTIONS = {
  database: { type: 'string' },
  'read-only': { type: 'boolean' },
  server: { type: 'string', multiple: true },
} as const;

function mistakeOf(args: string[], allowPositionals = false): string | undefined {
  try {
    checkCommandArguments(args, OPTIONS, 'server', allowPositionals);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as UsageError).message;
  }
}

describe('checkCommandArguments', () => {
  it.each([
    [['--bogus'], 'unknown option --bogus'],
    [['-x'], 'unknown option -x'],
    [['--database'], 'option --database needs a value'],
    [['--database', '--read-only'], 'option --database needs a value'],
    [['--database', '-x*'], 'option --database: its value "-x*" starts with "-"; write --database=-x* if you mean it'],
    [['--database', '--elsewhere'], 'option --database: its value "--elsewhere" starts with "-"; write --database=--elsewhere if you mean it'],
    [['--database', ''], 'option --database: its value is empty'],
    [['--database='], 'option --database: its value is empty'],
    [['--read-only=yes'], 'option --read-only takes no value'],
    [['extra'], 'unexpected argument "extra"'],
    [['--database', 'db', '--bogus', '--read-only'], 'unknown option --bogus'],
  ])('refuses %j: %s, pointing at the help', (args, mistake) => {
    expect(mistakeOf(args)).toBe(`${mistake} (see 'prserv server --help')`);
  });

  it.each([
    [[]],
    [['--database', 'postgres://db/prserv', '--read-only']],
    [['--database=./folder']],
    [['--server', 'a:1', '--server', 'b:2']],
    // A value may start with a dash when given inline.
    [['--database=-odd-folder']],
  ])('accepts %j', (args) => {
    expect(mistakeOf(args)).toBeUndefined();
  });

  it('accepts operands where the command takes them', () => {
    expect(mistakeOf(['get-pr', '1.0', 'core2-64', 'c1'], true)).toBeUndefined();
  });

  it('takes everything after -- as operands, dashes and all', () => {
    expect(mistakeOf(['--database', 'db', '--', '-x*', '--read-only', '--bogus'], true)).toBeUndefined();
    expect(mistakeOf(['--', '-1.0'], false)).toBe(`unexpected argument "-1.0" (see 'prserv server --help')`);
  });
});
