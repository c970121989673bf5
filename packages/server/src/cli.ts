#!/usr/bin/env node
import { runCli } from './cli/main.js';

const code = await runCli(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr });
process.exitCode = code;
// The server resolves only after draining; nothing else should keep the process alive.
if (process.argv[2] === 'server') process.exit(code);
