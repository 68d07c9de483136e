import type { ChatApi } from './http.js';

/**
 * The caller's block list, kept by the client to hide blocked users' messages in groups (issue 16):
 * the server delivers a group's messages to every member alike and marks nothing, so hiding costs the
 * gateways nothing per delivery (DESIGN.md). Load it once, then block and unblock through it.
 */
export class BlockList {
  readonly #blocked = new Set<string>();

  constructor(private readonly api: ChatApi) {}

  /** Reads the list from the server (after sign-in, or to pick up another device's changes). */
  async load(): Promise<void> {
    const { items } = await this.api.listBlocks();
    this.#blocked.clear();
    for (const b of items) this.#blocked.add(b.userId);
  }

  async block(userId: string): Promise<void> {
    await this.api.blockUser(userId);
    this.#blocked.add(userId);
  }

  async unblock(userId: string): Promise<void> {
    await this.api.unblockUser(userId);
    this.#blocked.delete(userId);
  }

  has(userId: string): boolean {
    return this.#blocked.has(userId);
  }

  /** The messages a client shows: those of users the caller does not block. */
  visible<M extends { senderId: string }>(messages: readonly M[]): M[] {
    return messages.filter((m) => !this.#blocked.has(m.senderId));
  }
}
