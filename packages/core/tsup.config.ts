import { defineConfig } from 'tsup';

export default defineConfig({
  // `protocol` is its own entry so that the client loads the codec without the database stack.
  entry: { index: 'src/index.ts', protocol: 'src/protocol/index.ts' },
  format: ['esm', 'cjs'],
  // Shared code goes to common chunks in both formats, so `instanceof ProtocolError` holds
  // whichever entry created the error.
  splitting: true,
  // tsup 8 sets baseUrl for its declaration build, which TypeScript 6 deprecates.
  dts: { compilerOptions: { ignoreDeprecations: '6.0' } },
  sourcemap: true,
  clean: true,
  target: 'node20',
  // import.meta.url in the CommonJS build too (the embedded store finds its template with it).
  shims: true,
  // Kysely's ESM build is some 400 modules: loading them took 290 ms of every start; bundled, 50.
  // Its license goes with the bundle (scripts/write-third-party-notices.mjs).
  noExternal: ['kysely'],
});
