import type { Child } from './children.js';

/** What a driven child answers when a command failed. */
export type IpcErrorReply = { type: 'error'; message: string };

/**
 * Sends `command` to a child over its IPC channel and resolves with the next message it sends back
 * (one command in flight per child). Rejects on an `error` reply, on the child's exit and after
 * `timeoutMs`.
 */
export const ipcRequest = <R extends { type: string }>(
  child: Child,
  command: { type: string },
  timeoutMs: number,
): Promise<R> =>
  new Promise<R>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${child.name}: no answer to ${command.type} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (msg: R | IpcErrorReply) => {
      cleanup();
      if (msg.type === 'error') reject(new Error(`${child.name}: ${(msg as IpcErrorReply).message}`));
      else resolve(msg as R);
    };
    const onExit = () => {
      cleanup();
      reject(new Error(`${child.name} exited:\n${child.tail()}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.process.off('message', onMessage);
      child.process.off('exit', onExit);
    };
    if (child.hasExited() || !child.process.connected) {
      clearTimeout(timer);
      reject(new Error(`${child.name} is gone: cannot send ${command.type}`));
      return;
    }
    child.process.on('message', onMessage);
    child.process.once('exit', onExit);
    child.process.send(command, (err) => {
      if (!err) return;
      cleanup();
      reject(new Error(`${child.name}: could not send ${command.type}: ${err.message}`));
    });
  });
