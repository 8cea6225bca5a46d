import { describe, expect, it } from 'vitest';
import { joinContinuation } from './continuation.js';

describe('joinContinuation', () => {
  it('puts exactly one space between words', () => {
    expect(joinContinuation('It was', ' a truth')).toBe(' a truth');
    expect(joinContinuation('It was ', ' a truth')).toBe('a truth');
    expect(joinContinuation('It was', 'a truth')).toBe(' a truth');
    expect(joinContinuation('', ' Once')).toBe('Once');
  });

  it('adds no space before punctuation or after a line break', () => {
    expect(joinContinuation('It was', ', indeed')).toBe(', indeed');
    expect(joinContinuation('Chapter 1\n', ' It was')).toBe('It was');
    expect(joinContinuation('Done.', '\n\nNext')).toBe('\n\nNext');
  });
});
