/**
 * Runs a bench worker process's `main` (B4's and B5's runners): exits 0 once it resolved, or reports
 * its error to the orchestrator over IPC (`{ type: 'error' }`) and exits 1. SIGTERM (the orchestrator's
 * stop) exits through Node, so a `--cpu-prof` profile gets written.
 */
export const runWorker = (main: () => Promise<void>): void => {
  process.on('SIGTERM', () => process.exit(143));
  main().then(
    () => setTimeout(() => process.exit(0), 100),
    (err: unknown) => {
      process.send?.({
        type: 'error',
        message: err instanceof Error ? (err.stack ?? err.message) : String(err),
      });
      setTimeout(() => process.exit(1), 100);
    },
  );
};
