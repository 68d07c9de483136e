import { commandShapes, type RouteShape } from '@chat/events';
import { describe, expect, it } from 'vitest';
import { definedShapeFor, pendingShapes, v11Shapes } from './routes.js';

// The v1.1 routes the SDK serves ahead of the server: it must switch to the shapes of @chat/events
// the moment they exist, and a shape landing under another path spelling must not go unnoticed.

const defined = Object.values(commandShapes) as RouteShape[];

describe('v1.1 route shapes', () => {
  it('uses the shape of @chat/events for a route once it has one, the stand-in until then', () => {
    for (const [name, pending] of Object.entries(pendingShapes)) {
      const shape = v11Shapes[name as keyof typeof v11Shapes];
      expect(shape, name).toBe(definedShapeFor(pending) ?? pending);
    }
    const start = defined.find((s) => s.name === 'createConversation')!;
    expect(definedShapeFor({ ...pendingShapes.addReaction, path: start.path, method: start.method })).toBe(
      start,
    );
  });

  it('finds every reaction or notification-level route of @chat/events under the path the SDK calls', () => {
    const v11Like = defined.filter(
      (s) => /\/reactions(\/|$)/.test(s.path) || /\/conversations\/[^/]+\/notifications$/.test(s.path),
    );
    const served = Object.values(v11Shapes) as RouteShape[];
    for (const shape of v11Like) expect(served, `${shape.method} ${shape.path}`).toContain(shape);
  });

  it('stand-ins follow API.md: reaction paths, 404 for unknown messages, no body', () => {
    expect(pendingShapes.addReaction.path).toBe(
      '/v1/conversations/:conversationId/messages/:messageId/reactions/:reaction',
    );
    expect(pendingShapes.setNotificationLevel.body.safeParse({ level: 'mentions' }).success).toBe(true);
    expect(pendingShapes.setNotificationLevel.body.safeParse({ level: 'loud' }).success).toBe(false);
    expect(pendingShapes.removeReaction.errors).toContain('not_found');
  });
});
