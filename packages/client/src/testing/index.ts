/**
 * @module @infinitescribe/client/testing: a hand-driven fake of the client for tests of code that
 * uses it (stores, components, an app's own bindings).
 * @example
 * import { FakeSSEClient } from '@infinitescribe/client/testing';
 */
export { FakeSSEClient } from './fake-sse-client.js';
