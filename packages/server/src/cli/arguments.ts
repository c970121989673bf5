import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Checks the arguments of `prserv <command>` before `node:util`'s parser reads them, so that every
 * mistake is stated in our words and points at the command's help: `unknown option --bogus (see
 * 'prserv server --help')`, not the parser's own text.
 */
export function checkCommandArguments(args: string[], options: Options, command: string, allowPositionals: boolean): void {
  const mistake = findMistake(args, options, allowPositionals);
  if (mistake) throw new UsageError(`${mistake} (see 'prserv ${command} --help')`);
}

function findMistake(args: string[], options: Options, allowPositionals: boolean): string | undefined {
  const { tokens } = parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true });
  for (const token of tokens) {
    if (token.kind === 'positional') {
      if (!allowPositionals) return `unexpected argument ${JSON.stringify(token.value)}`;
      continue;
    }
    if (token.kind !== 'option') continue;
    const option = options[token.name];
    if (!option) return `unknown option ${token.rawName}`;
    if (option.type === 'boolean' && token.inlineValue) return `option ${token.rawName} takes no value`;
    if (option.type === 'string') {
      const { value } = token;
      if (value === undefined) return `option ${token.rawName} needs a value`;
      if (value === '') return `option ${token.rawName}: its value is empty`;
      // "--database --bind x": the parser would take "--bind" as the database. A value starting
      // with '-' is refused unless given inline, so that a forgotten value never swallows a flag.
      if (!token.inlineValue && value.startsWith('-')) {
        // The next word is one of this command's options: the value was forgotten.
        if (isOptionName(value, options)) return `option ${token.rawName} needs a value`;
        return `option ${token.rawName}: its value ${JSON.stringify(value)} starts with "-"; write ${token.rawName}=${value} if you mean it`;
      }
    }
  }
  return undefined;
}

/** True when `word` is `--name`, `--name=…` or `-x` of an option in `options`. */
function isOptionName(word: string, options: Options): boolean {
  if (word.startsWith('--')) return Object.hasOwn(options, word.slice(2).split('=')[0]!);
  return Object.values(options).some((option) => option.short !== undefined && word.startsWith(`-${option.short}`));
}
