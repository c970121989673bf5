import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8');

/** Code blocks of the README that say which file of the repository they show. */
const shownFiles = [...readme.matchAll(/<!-- (examples\/[\w.-]+) -->\n```\w*\n([\s\S]*?)```/g)].map(([, file, code]) => ({
  file: file!,
  code: code!,
}));

describe('README', () => {
  it('shows the examples it names verbatim, so what a reader pastes is what the tests run', () => {
    expect(shownFiles.map(({ file }) => file)).toEqual([
      'examples/in-process-allocation.mjs',
      'examples/ci-check-revisions.mjs',
      'examples/pipelined-get-pr.mjs',
    ]);
    for (const { file, code } of shownFiles) expect(code).toBe(readFileSync(new URL(file, root), 'utf8'));
  });

  it('has no JavaScript or TypeScript block that is not one of those files', () => {
    const blocks = [...readme.matchAll(/(<!-- examples\/[\w.-]+ -->\n)?```(js|ts|mjs|javascript|typescript)\n/g)];
    expect(blocks.filter(([, marker]) => !marker).map(([block]) => block)).toEqual([]);
  });
});
