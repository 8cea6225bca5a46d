/**
 * Bad-input corpus: JWT subjects. Those common identity providers issue, which must get a working
 * `user:<sub>` topic (streams, publishes, generations, tasks), and those that cannot be served,
 * which must be refused with a 401 that says why (never a stream on a topic nothing reaches).
 */
export const SERVABLE_SUBJECTS: readonly string[] = [
  'auth0|5f7c8ec7c33c6c004bbafe82',
  'google-oauth2|109876543210987654321',
  'samlp|okta-corp|jane.doe@example.com',
  'github|1234567',
  'jane.doe+news@example.com',
  "o'brien&co=1/2?#x%41@example.com",
  'urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66',
  'jöns.müller@exämple.de',
  '用户-42',
  's'.repeat(256),
];

/** Each with why it cannot be served. */
export const UNSERVABLE_SUBJECTS: readonly { sub: string; why: string }[] = [
  { sub: 's'.repeat(257), why: 'longer than 256 characters' },
  { sub: 'alice,bob', why: 'a comma separates topics in ?topics=' },
  { sub: 'jane doe', why: 'whitespace' },
  { sub: 'tab\there', why: 'a control character' },
  { sub: 'line\nbreak', why: 'a line break' },
  { sub: 'line\u2028separator', why: 'a Unicode line separator' },
  { sub: 'zero\u200bwidth', why: 'an invisible format character' },
  { sub: 'lone\ud800surrogate', why: 'a lone surrogate' },
  { sub: 'del\u007f', why: 'DEL' },
];
