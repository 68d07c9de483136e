import { decodePageCursor, encodePageCursor } from '@chat/events';

/** Page cursor of the notification list (newest first): the last item's time and id, opaque to clients. */
export type NotificationCursor = { createdAt: string; notificationId: string };

/** In the one cursor format of every list (@chat/events), which the HTTP edge checks too. */
export const encodeCursor = (cursor: NotificationCursor): string =>
  encodePageCursor({ at: cursor.createdAt, id: cursor.notificationId });

/** `null` when the cursor was not made by `encodeCursor`. */
export const decodeCursor = (raw: string): NotificationCursor | null => {
  const decoded = decodePageCursor(raw);
  return decoded && { createdAt: decoded.at, notificationId: decoded.id };
};
