import { ChatError, type ExportEventsQuery, NDJSON_MEDIA_TYPE, queryShapes } from '@chat/events';
import {
  type EventFilter,
  envelopeLine,
  type RecordedEvent,
  START_POSITION,
  toEnvelope,
} from '@chat/eventstore';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { routeOf } from '../plugins/route-schema.js';

/** Events per store read while streaming (and the largest batch a follow hands out at once). */
const STREAM_PAGE = 2000;

const wantsNdjson = (accept: string | undefined): boolean =>
  (accept ?? '').split(',').some((part) => part.split(';')[0]?.trim().toLowerCase() === NDJSON_MEDIA_TYPE);

const filterOf = (query: ExportEventsQuery): EventFilter => ({
  ...(query.types ? { eventTypes: query.types } : {}),
  ...(query.streamPrefix ? { streamPrefixes: [query.streamPrefix] } : {}),
});

/** The raw response as the stream writes it: only what backpressure and disconnects need. */
type RawResponse = {
  write(chunk: string): boolean;
  end(): unknown;
  destroy(err?: Error): unknown;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
  readonly destroyed: boolean;
};

/**
 * Writes one chunk, waiting for the socket to drain when its buffer is full, so a slow reader holds
 * back the reads from the store instead of filling memory. False once the client has gone.
 */
const writeChunk = async (out: RawResponse, chunk: string, signal: AbortSignal): Promise<boolean> => {
  if (signal.aborted || out.destroyed) return false;
  if (out.write(chunk)) return true;
  await new Promise<void>((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      resolve();
    };
    out.once('drain', done);
    out.once('close', done);
  });
  return !signal.aborted && !out.destroyed;
};

/**
 * The event export (issue 15): the global log for analysts and auditors, read through the store's
 * `readAll`/`subscribeToAll` — the same reads as `chatctl replay`/`tail`, so events come upcast to the
 * current schema (and through whatever else the store's read path applies) and each NDJSON line is the
 * line `chatctl replay` prints.
 */
export const exportRoutes: FastifyPluginAsyncZod = async (app) => {
  // Streams still open when the service shuts down end, so a graceful close does not wait on followers.
  const open = new Set<AbortController>();
  app.addHook('preClose', async () => {
    for (const controller of open) controller.abort();
  });

  app.route({
    ...routeOf(queryShapes.exportEvents),
    onRequest: app.requireExportReader,
    handler: async (request, reply) => {
      const query = request.query;
      const filter = filterOf(query);
      const ndjson = wantsNdjson(request.headers.accept);
      if (query.follow && !ndjson) {
        throw new ChatError('validation_failed', 'invalid querystring', [
          { path: ['follow'], message: `follow=true streams: send Accept: ${NDJSON_MEDIA_TYPE}` },
        ]);
      }
      if (!ndjson) {
        const events = await app.store.readAll({ fromPosition: query.from, maxCount: query.limit, filter });
        return {
          events: events.map(toEnvelope),
          nextPosition: events.at(-1)?.position ?? query.from ?? START_POSITION,
        };
      }
      // Read before the headers go out, so a store that is down still answers 503 with the error body.
      let first: RecordedEvent[] = [];
      if (query.follow) await app.store.ping();
      else first = await app.store.readAll({ fromPosition: query.from, maxCount: STREAM_PAGE, filter });

      const controller = new AbortController();
      const out = reply.raw;
      out.once('close', () => controller.abort());
      open.add(controller);
      app.metrics.exportStreams.inc();
      reply.hijack();
      out.writeHead(200, {
        'content-type': `${NDJSON_MEDIA_TYPE}; charset=utf-8`,
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
      });
      const log = request.log;
      try {
        if (query.follow) await follow(app, query, filter, out, controller.signal);
        else await toEnd(app, filter, first, out, controller.signal);
        if (!out.destroyed) out.end();
      } catch (err) {
        // Headers are out: ending normally would look like the end of the log, so the stream breaks.
        if (!controller.signal.aborted) log.error({ err }, 'event export failed while streaming');
        out.destroy(err instanceof Error ? err : new Error(String(err)));
      } finally {
        open.delete(controller);
        app.metrics.exportStreams.dec();
      }
      return reply;
    },
  });
};

type App = Parameters<FastifyPluginAsyncZod>[0];

const toEnd = async (
  app: App,
  filter: EventFilter,
  first: RecordedEvent[],
  out: RawResponse,
  signal: AbortSignal,
): Promise<void> => {
  let page = first;
  for (;;) {
    const last = page.at(-1);
    if (!last) return;
    let chunk = '';
    for (const e of page) chunk += `${envelopeLine(e)}\n`;
    if (!(await writeChunk(out, chunk, signal))) return;
    if (page.length < STREAM_PAGE) return;
    page = await app.store.readAll({ fromPosition: last.position, maxCount: STREAM_PAGE, filter });
  }
};

const follow = async (
  app: App,
  query: ExportEventsQuery,
  filter: EventFilter,
  out: RawResponse,
  signal: AbortSignal,
): Promise<void> => {
  const batches = app.store.subscribeToAll({
    fromPosition: query.from,
    filter,
    signal,
    batchSize: STREAM_PAGE,
  });
  for await (const batch of batches) {
    let chunk = '';
    for (const e of batch) chunk += `${envelopeLine(e)}\n`;
    if (chunk && !(await writeChunk(out, chunk, signal))) return;
  }
};
