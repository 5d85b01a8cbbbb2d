import { EXIT, main } from '../lib/cli/main.ts';

const code = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  cwd: process.cwd(),
  env: process.env,
  signals: process,
});
// An interrupted run has recorded itself and cleaned up: whatever it abandoned must not keep the process alive.
if (code === EXIT.interrupted || code === EXIT.terminated) process.exit(code);
process.exitCode = code;
