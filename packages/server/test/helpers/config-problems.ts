import { expect } from 'vitest';
import { ConfigError, parseConfig } from '../../../../apps/backend/src/config.js';

/** The problems `parseConfig` reports for `env`; fails the test if it accepts it. */
export function configProblems(env: Record<string, string>): string[] {
  try {
    parseConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('parseConfig accepted a bad configuration');
}
