import { expect } from 'vitest';

/** The JSON error body of every 4xx/5xx (docs/http-api.md). */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** Asserts a JSON error of the API's shape (status, JSON content type, code, message) and returns it. */
export async function expectJsonError(response: Response, status: number, code: string): Promise<ErrorBody> {
  const text = await response.text();
  expect({ status: response.status, text }).toMatchObject({ status });
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  const body = JSON.parse(text) as ErrorBody;
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.code).toBe(code);
  expect(body.error.message).toEqual(expect.any(String));
  return body;
}
