import { PassThrough } from 'node:stream';
import { runCli } from '../../src/cli/main.js';

/** Runs `prserv ARGS` in this process with `env`, collecting its exit code and output. */
export async function runInProcess(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.setEncoding('utf8').on('data', (text: string) => (out += text));
  stderr.setEncoding('utf8').on('data', (text: string) => (err += text));
  const code = await runCli(args, { env, stdout, stderr });
  return { code, stdout: out, stderr: err };
}
