import WebSocket from 'ws';

export type UpgradeOutcome =
  | { status: 101; helloUserId: string | undefined }
  | { status: number; body: string }
  | { status: 'client-refused'; reason: string };

/**
 * One WebSocket upgrade: the status it is answered with, the refusal's body, or (on 101) the userId of
 * the `hello` frame; the socket is closed right after. `client-refused`: the ws client itself would not
 * send these headers (characters no header may hold), so the server never saw the case.
 */
export const tryUpgrade = (
  url: string,
  options: { token: string; via: 'query' | 'protocol'; origin: string | undefined },
): Promise<UpgradeOutcome> =>
  new Promise((resolve) => {
    let ws: WebSocket;
    try {
      const headers = options.origin === undefined ? {} : { origin: options.origin };
      ws =
        options.via === 'query'
          ? new WebSocket(`${url}?access_token=${encodeURIComponent(options.token)}`, { headers })
          : new WebSocket(url, ['chat.v1', `bearer.${options.token}`], { headers });
    } catch (err) {
      resolve({ status: 'client-refused', reason: String(err) });
      return;
    }
    const timer = setTimeout(() => {
      ws.terminate();
      resolve({ status: 0, body: 'no answer in 15 s' });
    }, 15_000);
    const done = (outcome: UpgradeOutcome) => {
      clearTimeout(timer);
      resolve(outcome);
    };
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        ws.terminate();
      });
    });
    ws.on('message', (data) => {
      let userId: string | undefined;
      try {
        const frame = JSON.parse(String(data)) as { type?: string; userId?: string };
        userId = frame.type === 'hello' ? frame.userId : undefined;
      } catch {
        userId = undefined;
      }
      done({ status: 101, helloUserId: userId });
      ws.close();
    });
    ws.on('error', (err) => {
      if (err.message.includes('Invalid') || err.message.includes('invalid'))
        done({ status: 'client-refused', reason: err.message });
    });
  });

/** The outcome in a failure message: the status, and the refusal's body or the hello's user. */
export const describeOutcome = (outcome: UpgradeOutcome): string =>
  outcome.status === 101
    ? `101, hello as ${'helloUserId' in outcome ? String(outcome.helloUserId) : '?'}`
    : 'body' in outcome
      ? `${outcome.status} ${outcome.body.slice(0, 200)}`
      : `${outcome.status} ${'reason' in outcome ? outcome.reason : ''}`;
