import uWS from 'uWebSockets.js';
import { describe, expect, it } from 'vitest';

// Some uWebSockets.js builds fall back to a JavaScript implementation when no binary fits the runtime
// (the previous alias did, silently): the gateway would then run, and pass its tests, on something else.
describe('uWebSockets.js', () => {
  it('is the native binding for this runtime', () => {
    expect(Function.prototype.toString.call(uWS.App)).toContain('[native code]');
    expect(typeof uWS.us_socket_local_port).toBe('function');
    expect(Function.prototype.toString.call(uWS.us_socket_local_port)).toContain('[native code]');
  });
});
