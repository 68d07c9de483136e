import { Agent, request } from 'node:http';

export type RawResponse = {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
};

const agent = new Agent({ keepAlive: true, maxSockets: 8 });

/**
 * One HTTP request with nothing normalised: the path goes out byte for byte (malformed percent-encoding,
 * `..`, repeated query keys), headers as given, the body as given. `fetch` would clean up the URL.
 */
export const rawRequest = async (
  baseUrl: string,
  options: { method: string; path: string; headers?: Record<string, string>; body?: string | Buffer },
  timeoutMs = 15_000,
): Promise<RawResponse> => {
  for (let attempt = 0; ; attempt++) {
    try {
      return await once(baseUrl, options, timeoutMs);
    } catch (err) {
      // A kept-alive connection the server closed after its last answer (it closes after a 4xx it
      // cannot keep the connection for): Node's documented retry for a reused socket, once.
      if (!(err instanceof ReusedSocketError) || attempt > 0)
        throw err instanceof ReusedSocketError ? err.cause : err;
    }
  }
};

class ReusedSocketError extends Error {}

const once = (
  baseUrl: string,
  options: { method: string; path: string; headers?: Record<string, string>; body?: string | Buffer },
  timeoutMs: number,
): Promise<RawResponse> => {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: options.method,
        path: options.path,
        headers: {
          ...(options.body === undefined ? {} : { 'content-length': Buffer.byteLength(options.body) }),
          ...options.headers,
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(
        new Error(`no answer to ${options.method} ${options.path.slice(0, 200)} in ${timeoutMs} ms`),
      ),
    );
    req.on('error', (err: NodeJS.ErrnoException) =>
      reject(
        req.reusedSocket && err.code === 'ECONNRESET'
          ? new ReusedSocketError('reused socket reset', { cause: err })
          : err,
      ),
    );
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
};

export const closeHttpAgent = () => agent.destroy();
