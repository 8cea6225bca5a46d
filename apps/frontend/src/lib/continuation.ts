/**
 * @module Joining a model's continuation to the document it continues: exactly one space between
 * words, none doubled, none added before punctuation or after a line break.
 */

/**
 * The separator-adjusted continuation to append to `document`.
 * @example joinContinuation('It was', ' a truth') === ' a truth'
 * @example joinContinuation('It was ', ' a truth') === 'a truth'
 * @example joinContinuation('It was', 'a truth') === ' a truth'
 */
export function joinContinuation(document: string, continuation: string): string {
  if (document === '' || /\s$/.test(document)) return continuation.replace(/^[ \t]+/, '');
  if (/^[\p{L}\p{N}"'(“‘]/u.test(continuation)) return ` ${continuation}`;
  return continuation;
}
