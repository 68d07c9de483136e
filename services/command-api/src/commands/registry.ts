import { ChatError, type CommandResult, validationIssues } from '@chat/events';
import type { Actor, CommandServices, RegisteredCommand } from './catalogue.js';

/**
 * The commands served over NATS request/reply, by name. HTTP routes are registered from the same
 * definitions; other route plugins (e.g. notifications) register theirs here to be served over NATS too.
 */
export class CommandRegistry {
  readonly #commands = new Map<string, RegisteredCommand>();

  /** What every command runs with (the writer, the clock). */
  constructor(readonly services: CommandServices) {}

  register(command: RegisteredCommand): void {
    const { name } = command.shape;
    if (this.#commands.has(name)) throw new Error(`command ${name} registered twice`);
    this.#commands.set(name, command);
  }

  has(name: string): boolean {
    return this.#commands.has(name);
  }

  /**
   * Validates raw params and body (as received over NATS) with the command's schemas, runs it and
   * checks its result against the response schema, as the HTTP serializer does.
   */
  async execute(
    name: string,
    actor: Actor,
    params: unknown,
    body: unknown,
  ): Promise<{ status: number; result: CommandResult }> {
    const command = this.#commands.get(name);
    if (!command) throw new ChatError('not_found', `unknown command ${name}`);
    const { shape } = command;
    const parsedParams = shape.params.safeParse(params ?? {});
    if (!parsedParams.success)
      throw new ChatError(
        'validation_failed',
        'invalid params',
        validationIssues(parsedParams.error.issues, ['params']),
      );
    const parsedBody = shape.body.safeParse(body);
    if (!parsedBody.success)
      throw new ChatError('validation_failed', 'invalid body', validationIssues(parsedBody.error.issues));
    const outcome = await command.run(this.services, actor, parsedParams.data, parsedBody.data);
    const schema = shape.responses[outcome.status];
    if (!schema) throw new Error(`${name} answered ${outcome.status}, which its shape does not list`);
    // Checked against the command's own response schema, one of those a CommandResult can be.
    return { status: outcome.status, result: schema.encode(outcome.result) as CommandResult };
  }
}
