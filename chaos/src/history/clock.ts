/**
 * Milliseconds since the epoch with 0.1 ms resolution, monotonic within a process: the one clock every
 * process of a run stamps its history with (they share the host's wall clock at their start).
 */
export const now = (): number => Math.round((performance.timeOrigin + performance.now()) * 10) / 10;
