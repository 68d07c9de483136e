/**
 * At most one write in flight, started without waiting for it: `start` waits for the previous write to
 * land, then starts the next and returns. A failed write surfaces from the next `start` or from
 * `drain`, never as an unhandled rejection. Lets the caller read or fold the next batch while Postgres
 * commits the last one.
 */
export const writeBehind = () => {
  let inFlight: Promise<unknown> = Promise.resolve();
  return {
    async start(write: () => Promise<unknown>): Promise<void> {
      await inFlight;
      inFlight = write();
      inFlight.catch(() => {});
    },
    /** Resolves when the write in flight has landed (rejects if it failed). */
    drain: async (): Promise<void> => {
      await inFlight;
    },
  };
};
