import { randomUUID } from 'node:crypto';
import {
  ChatError,
  type CommandReply,
  commandRequestSchema,
  type NatsSubjects,
  uuidSchema,
  validationIssues,
} from '@chat/events';
import type { Msg, NatsConnection, Subscription } from 'nats';
import type { Logger } from 'pino';
import type { CommandRegistry } from '../commands/registry.js';
import { commandExpired, expired } from '../commands/writer.js';
import { toApiError } from '../plugins/errors.js';
import type { AppMetrics } from '../plugins/metrics.js';
import type { RateLimits } from '../plugins/rate-limit.js';
import type { NatsOutbox } from './outbox.js';

const encoder = new TextEncoder();

/**
 * The part of a requester's budget within which a command may still start: the rest (a fifth, at most
 * 1 s) is left for the append and the reply, so that a command started in time is answered in time.
 */
const runnableWithin = (budgetMs: number): number => budgetMs - Math.min(1000, budgetMs / 5);
const decoder = new TextDecoder();

/**
 * Serves every registered command on `<prefix>.cmd.<name>` (request/reply). One queue group for all
 * instances: NATS hands each request to exactly one of them, which is how they share the load.
 */
export class CommandResponder {
  #subscription: Subscription | undefined;
  #inFlight = new Set<Promise<void>>();

  constructor(
    private readonly deps: {
      nats: NatsConnection;
      /** Where replies are published (with the live events of the same turn of the event loop). */
      outbox: NatsOutbox;
      subjects: NatsSubjects;
      commands: CommandRegistry;
      /** The HTTP routes' limiter: a user's WebSocket commands draw from their one command budget. */
      limits: RateLimits;
      metrics: AppMetrics;
      logger: Logger;
      queueGroup: string;
    },
  ) {}

  start(): void {
    const { nats, subjects, queueGroup } = this.deps;
    this.#subscription = nats.subscribe(subjects.allCommands, {
      queue: queueGroup,
      callback: (err, msg) => {
        if (err) {
          this.deps.logger.warn({ err }, 'command subscription error');
          return;
        }
        const handling = this.#handle(msg);
        this.#inFlight.add(handling);
        void handling.finally(() => this.#inFlight.delete(handling));
      },
    });
  }

  /** Stops taking requests and waits for the ones being handled to be answered. */
  async stop(): Promise<void> {
    const subscription = this.#subscription;
    this.#subscription = undefined;
    if (subscription && !subscription.isClosed()) await subscription.drain().catch(() => undefined);
    await Promise.allSettled([...this.#inFlight]);
  }

  async #handle(msg: Msg): Promise<void> {
    const received = performance.now();
    const name = msg.subject.slice(this.deps.subjects.prefix.length + '.cmd.'.length);
    let reply: CommandReply;
    try {
      reply = { ok: true, ...(await this.#execute(name, msg.data, received)) };
    } catch (err) {
      const { status, body } = toApiError(err);
      if (status >= 500) this.deps.logger.error({ err, command: name }, 'command failed');
      reply = { ok: false, status, error: body.error };
    }
    this.deps.metrics.commands.inc({ command: name, transport: 'nats', status: reply.status });
    if (!msg.reply) return;
    // Through the outbox: in the same socket write as the live event the command's append published.
    this.deps.outbox.publish(msg.reply, encoder.encode(JSON.stringify(reply)), (err) =>
      this.deps.logger.warn({ err, command: name }, 'could not reply'),
    );
  }

  async #execute(name: string, data: Uint8Array, received: number) {
    let json: unknown;
    try {
      json = JSON.parse(decoder.decode(data));
    } catch (err) {
      throw new ChatError(
        'validation_failed',
        'request is not JSON',
        [{ path: [], message: 'invalid JSON' }],
        {
          cause: err,
        },
      );
    }
    const parsed = commandRequestSchema.safeParse(json);
    if (!parsed.success)
      throw new ChatError(
        'validation_failed',
        'invalid command request',
        validationIssues(parsed.error.issues),
      );
    const request = parsed.data;
    if (!this.deps.commands.has(name)) throw new ChatError('not_found', `unknown command ${name}`);
    const expiresAt =
      request.budgetMs === undefined ? undefined : received + runnableWithin(request.budgetMs);
    if (expired(expiresAt)) throw commandExpired();
    await this.deps.limits.take('commands', request.userId);
    const correlation = uuidSchema.safeParse(request.correlationId);
    return this.deps.commands.execute(
      name,
      {
        userId: request.userId,
        roles: request.roles ?? [],
        correlationId: correlation.success ? correlation.data : randomUUID(),
        causationId: null,
        ...(expiresAt === undefined ? {} : { expiresAt }),
      },
      request.params ?? {},
      request.body,
    );
  }
}
