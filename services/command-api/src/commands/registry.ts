import { ChatError, validationIssues } from '@chat/events';
import type { Actor, CommandDefinition, CommandOutcome, CommandServices } from './catalogue.js';

/** A command as the registry stores it: any schemas; `run` gets what they parsed. */
export type RegisteredCommand = CommandDefinition;

/**
 * The commands served over NATS request/reply, by name. HTTP routes call the same definitions
 * directly; other route plugins (e.g. notifications) register theirs here to be served over NATS too.
 */
export class CommandRegistry {
  readonly #commands = new Map<string, RegisteredCommand>();

  constructor(private readonly services: CommandServices) {}

  register(command: RegisteredCommand): void {
    if (this.#commands.has(command.name)) throw new Error(`command ${command.name} registered twice`);
    this.#commands.set(command.name, command);
  }

  has(name: string): boolean {
    return this.#commands.has(name);
  }

  /** Validates raw params and body (as received over NATS) and runs the command. */
  async execute(name: string, actor: Actor, params: unknown, body: unknown): Promise<CommandOutcome> {
    const command = this.#commands.get(name);
    if (!command) throw new ChatError('not_found', `unknown command ${name}`);
    const parsedParams = command.params.safeParse(params ?? {});
    if (!parsedParams.success)
      throw new ChatError(
        'validation_failed',
        'invalid params',
        validationIssues(parsedParams.error.issues, ['params']),
      );
    const parsedBody = command.body.safeParse(body);
    if (!parsedBody.success)
      throw new ChatError('validation_failed', 'invalid body', validationIssues(parsedBody.error.issues));
    return command.run(this.services, actor, parsedParams.data, parsedBody.data);
  }
}
