/** Page cursor of the notification list (newest first): the last item's time and id, opaque to clients. */
export type NotificationCursor = { createdAt: string; notificationId: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const encodeCursor = (cursor: NotificationCursor): string =>
  Buffer.from(JSON.stringify([cursor.createdAt, cursor.notificationId])).toString('base64url');

/** `null` when the cursor was not made by `encodeCursor`. */
export const decodeCursor = (raw: string): NotificationCursor | null => {
  try {
    const value: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (!Array.isArray(value) || value.length !== 2) return null;
    const [createdAt, notificationId] = value as unknown[];
    if (typeof createdAt !== 'string' || typeof notificationId !== 'string') return null;
    if (Number.isNaN(Date.parse(createdAt)) || !UUID.test(notificationId)) return null;
    return { createdAt, notificationId };
  } catch {
    return null;
  }
};
