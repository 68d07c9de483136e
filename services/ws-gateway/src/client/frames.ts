import {
  type ApiErrorBody,
  type ClientFrame,
  clientFrameSchema,
  type ServerFrame,
  validationIssues,
} from '@chat/events';

// Server frames are built as strings: an event's envelope arrives from NATS as JSON text and is
// spliced in unparsed, so each NATS message is serialised exactly once whatever the fan-out.

export const eventFrame = (conversationId: string, seq: number, envelopeJson: string): string =>
  `{"type":"event","conversationId":${JSON.stringify(conversationId)},"seq":${seq},"event":${envelopeJson}}`;

export const frame = (f: ServerFrame): string => JSON.stringify(f);

export const errorFrame = (ref: string | null, error: ApiErrorBody['error']): string =>
  JSON.stringify({ type: 'error', ref, error });

export type ParsedFrame =
  | { ok: true; frame: ClientFrame }
  | { ok: false; ref: string | null; error: ApiErrorBody['error'] };

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * A client frame, or the `validation_failed` error it deserves (API.md §4: text frames, one JSON object
 * each; a binary frame is not one, whatever its bytes). Pure.
 */
export const parseClientFrame = (
  message: ArrayBuffer,
  isBinary = false,
): { json: unknown } | { json?: undefined; ref: null; error: ApiErrorBody['error'] } => {
  if (isBinary) {
    return {
      ref: null,
      error: { code: 'validation_failed', message: 'binary frames are not accepted; send text frames' },
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(message));
  } catch {
    return { ref: null, error: { code: 'validation_failed', message: 'frame is not valid JSON' } };
  }
  return { json };
};

/** The frame's `type` before validation: `ping` has its own flood-control bucket. */
export const frameType = (json: unknown): string | undefined =>
  typeof json === 'object' && json !== null && 'type' in json && typeof json.type === 'string'
    ? json.type
    : undefined;

/** The frame's `ref` when it has a usable one (a string of at most 64 characters), else null. */
export const refOf = (json: unknown): string | null =>
  typeof json === 'object' &&
  json !== null &&
  'ref' in json &&
  typeof json.ref === 'string' &&
  json.ref.length <= 64
    ? json.ref
    : null;

export const validateClientFrame = (json: unknown): ParsedFrame => {
  const parsed = clientFrameSchema.safeParse(json);
  if (parsed.success) return { ok: true, frame: parsed.data };
  return {
    ok: false,
    ref: refOf(json),
    error: {
      code: 'validation_failed',
      message: 'invalid frame',
      details: validationIssues(parsed.error.issues),
    },
  };
};
