import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

const TOKEN_IN_URL = /([?&](?:access_token|token)=)[^&\s"]+/g;

/** Strips tokens from query strings so that no log line ever carries a credential. */
export const redactUrl = (url: string): string => url.replace(TOKEN_IN_URL, '$1[REDACTED]');

/** One pino JSON logger per process, bound to the service name; components take child loggers. */
export const createLogger = (service: string, level = process.env.LOG_LEVEL ?? 'info'): Logger =>
  pino({
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'req.headers["sec-websocket-protocol"]',
        'headers.authorization',
        'token',
        'accessToken',
      ],
      censor: '[REDACTED]',
    },
    serializers: {
      req: (req: { method?: string; url?: string; id?: string }) => ({
        method: req.method,
        url: req.url ? redactUrl(req.url) : req.url,
        id: req.id,
      }),
      err: pino.stdSerializers.err,
    },
  });
