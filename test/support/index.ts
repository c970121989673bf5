// Shared helpers of the test suites, imported as `@prserv/test-support` (a vitest alias and a
// tsconfig path, so package tests never climb out of their package with relative paths).
export * from './cli-process.js';
export * from './databases.js';
export * from './raw-socket.js';
export * from './in-process-server.js';
export * from './duplex-pair.js';
export * from './ports.js';
