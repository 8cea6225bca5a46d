import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * The Redis Cluster slot (0–16383) of a key, honouring its `{hash tag}`: ioredis' own function
 * (the cluster-key-slot package, which ships no types).
 */
export const keySlot = require('cluster-key-slot') as (key: string) => number;
