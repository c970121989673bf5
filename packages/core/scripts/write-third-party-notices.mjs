// Writes dist/THIRD-PARTY-NOTICES.txt: the licenses of the code bundled into dist/ (Kysely).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bundled = ['kysely'];
const sections = bundled.map((name) => {
  // The package's own folder (packages may not export their package.json).
  const root = fileURLToPath(new URL(`../node_modules/${name}`, import.meta.url));
  const { version, license } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  return `${name} ${version} (${license})\n\n${readFileSync(join(root, 'LICENSE'), 'utf8').trim()}\n`;
});
writeFileSync(new URL('../dist/THIRD-PARTY-NOTICES.txt', import.meta.url), `Code from these packages is bundled into this package's dist/.\n\n${sections.join('\n---\n\n')}`);
