import { z } from 'zod';
import { noBody } from './commands.js';
import type { ErrorCode } from './errors.js';
import { instantSchema, positionSchema, userIdSchema } from './ids.js';
import type { RouteShape } from './routes.js';

// Admin commands (API.md §2.5; role `admin`): GDPR erasure by crypto-shredding (README "Erasure").

export const eraseUserParams = z.strictObject({ userId: userIdSchema });

export const eraseUserResult = z.object({
  userId: userIdSchema,
  /** When the user's key was destroyed (the first erasure's time on a repeat). */
  erasedAt: instantSchema,
  /** Where `UserErased` landed on the user's stream (the first one on a repeat). */
  position: positionSchema,
});
export type EraseUserResult = z.output<typeof eraseUserResult>;

const ADMIN_ERRORS = [
  'validation_failed',
  'unauthorized',
  'forbidden',
  'payload_too_large',
  'rate_limited',
  'unavailable',
] as const satisfies readonly ErrorCode[];

export const adminShapes = {
  eraseUser: {
    name: 'eraseUser',
    method: 'POST',
    path: '/v1/admin/users/:userId/erase',
    summary:
      "Erase a user's personal data (role admin): destroys their data key, so every text they wrote reads as null with erased: true, and appends UserErased; idempotent",
    tags: ['admin'],
    params: eraseUserParams,
    body: noBody,
    responses: {
      200: eraseUserResult.describe(
        'the user is erased (a repeat answers the first erasure; nothing appended)',
      ),
    },
    errors: ADMIN_ERRORS,
  },
} as const satisfies Record<string, RouteShape>;

export type AdminShapes = typeof adminShapes;
