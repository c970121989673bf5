import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, normalize, sep } from 'node:path';
import { promisify } from 'node:util';
import { gunzip as gunzipCallback } from 'node:zlib';

const gunzip = promisify(gunzipCallback);

const BLOCK = 512;

/**
 * Writes the regular files and folders of a gzip'd tar archive under `target` (which must exist).
 * Enough for the embedded store's template, which the build makes; other entry kinds (links,
 * devices) are refused, and so is any path that would leave `target`.
 */
export async function extractTarGz(archive: Uint8Array, target: string, options: { skip?: ReadonlySet<string> } = {}): Promise<void> {
  const tar = await gunzip(archive);
  const folders = new Set<string>();
  const files: { path: string; content: Uint8Array }[] = [];
  for (let offset = 0; offset + BLOCK <= tar.length; ) {
    const header = tar.subarray(offset, offset + BLOCK);
    if (header.every((byte) => byte === 0)) break;
    const prefix = text(header, 345, 155);
    const name = prefix ? `${prefix}/${text(header, 0, 100)}` : text(header, 0, 100);
    const size = Number.parseInt(text(header, 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(header[156] ?? 0);
    const start = offset + BLOCK;
    offset = start + Math.ceil(size / BLOCK) * BLOCK;
    const relative = normalize(name.replace(/^\/+/, ''));
    if (relative === '.' || relative === '' || options.skip?.has(relative)) continue;
    if (relative === '..' || relative.startsWith(`..${sep}`)) throw new Error(`archive entry ${JSON.stringify(name)} leaves the target folder`);
    const path = join(target, relative);
    if (type === '5') {
      folders.add(path);
    } else if (type === '0' || type === '\0') {
      folders.add(dirname(path));
      files.push({ path, content: tar.subarray(start, start + size) });
    } else {
      throw new Error(`archive entry ${JSON.stringify(name)} is of type ${JSON.stringify(type)}: only files and folders are expected`);
    }
  }
  // Folders first (sorted: parents before children), then every file at once.
  for (const folder of [...folders].sort()) await mkdir(folder, { recursive: true, mode: 0o700 });
  await Promise.all(files.map(({ path, content }) => writeFile(path, content, { mode: 0o600 })));
}

function text(block: Uint8Array, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return new TextDecoder().decode(end === -1 ? field : field.subarray(0, end));
}
