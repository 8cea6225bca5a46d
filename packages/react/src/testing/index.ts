/**
 * @module @infinitescribe/react/testing: fakes for testing components that use the hooks.
 * @example
 * import { FakeSSEClient, ManualFrames } from '@infinitescribe/react/testing';
 */
// The fake client lives with the client; re-exported so component tests need one import.
export { FakeSSEClient } from '@infinitescribe/client/testing';
export { ManualFrames } from './manual-frames.js';
