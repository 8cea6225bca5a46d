/**
 * @module @infinitescribe/react/testing: fakes for testing components that use the hooks.
 * @example
 * import { FakeSSEClient, ManualFrames } from '@infinitescribe/react/testing';
 */
export { FakeSSEClient } from './fake-sse-client.js';
export { ManualFrames } from './manual-frames.js';
