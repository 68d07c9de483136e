import { z } from 'zod';
import type { ChatEvent, EventType } from './events.js';

export const CURRENT_SCHEMA_VERSION = 1;

export const eventMetadataSchema = z.looseObject({
  userId: z.string(),
  correlationId: z.string(),
  causationId: z.string().nullable(),
  schemaVersion: z.number().int().min(1),
});
export type EventMetadata = z.infer<typeof eventMetadataSchema>;

/** The stored form of an event as it appears on the wire (API.md §3). */
export const envelopeSchema = z.object({
  id: z.string(),
  type: z.string(),
  streamId: z.string(),
  revision: z.number().int().min(0),
  position: z.string(),
  occurredAt: z.string(),
  data: z.record(z.string(), z.unknown()),
  metadata: eventMetadataSchema,
});

export type Envelope<T extends EventType = EventType> = {
  id: string;
  type: T;
  streamId: string;
  revision: number;
  /** Opaque global log position: 32 lower-case hex digits, ordered like the log. */
  position: string;
  occurredAt: string;
  data: Extract<ChatEvent, { type: T }>['data'];
  metadata: EventMetadata;
};

/** An envelope whose type is unknown to this build (e.g. written by a newer one). */
export type RawEnvelope = z.infer<typeof envelopeSchema>;
