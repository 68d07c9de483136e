#!/usr/bin/env tsx
import { runChatctl } from './cli.js';

// Wiring only: argv and the process's streams in, an exit code out. Ctrl-C stops `tail` cleanly.
const stop = new AbortController();
process.once('SIGINT', () => stop.abort());
process.once('SIGTERM', () => stop.abort());
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  // `chatctl replay | head` closes the pipe early: that is a normal end, not a failure.
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
process.exitCode = await runChatctl(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: stop.signal,
});
