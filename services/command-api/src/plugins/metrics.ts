import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { WriterMetrics } from '../commands/writer.js';

export type AppMetrics = ReturnType<typeof createMetrics>;

/** Command-side metrics (DESIGN.md "Operations"): request and append latency, conflicts, retries. */
export const createMetrics = (registry: Registry) => {
  const httpDuration = new Histogram({
    name: 'command_api_http_request_duration_seconds',
    help: 'HTTP request latency by route',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const appendDuration = new Histogram({
    name: 'command_api_append_duration_seconds',
    help: 'Event store append latency by stream kind',
    labelNames: ['stream'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  });
  const conflicts = new Counter({
    name: 'command_api_append_conflicts_total',
    help: 'Appends refused for a wrong expected revision',
    labelNames: ['stream'] as const,
    registers: [registry],
  });
  const retries = new Counter({
    name: 'command_api_command_retries_total',
    help: 'Commands decided again after a version conflict',
    registers: [registry],
  });
  const commands = new Counter({
    name: 'command_api_commands_total',
    help: 'Commands handled by name, transport and outcome (status)',
    labelNames: ['command', 'transport', 'status'] as const,
    registers: [registry],
  });
  const exportStreams = new Gauge({
    name: 'command_api_event_export_streams',
    help: 'NDJSON event exports being streamed now (follow=true ones stay until the client disconnects)',
    registers: [registry],
  });
  const writer: WriterMetrics = {
    observeAppend: (stream, seconds) => appendDuration.observe({ stream }, seconds),
    conflict: (stream) => conflicts.inc({ stream }),
    retry: () => retries.inc(),
  };
  return { registry, httpDuration, appendDuration, conflicts, retries, commands, exportStreams, writer };
};
