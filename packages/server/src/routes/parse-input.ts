import { z } from 'zod';
import { AppError } from '../core/errors.js';

/** Parses request input with a zod schema; a failure is a 400 naming every problem. */
export function parseInput<TSchema extends z.ZodType>(
  schema: TSchema,
  input: unknown,
  code: 'invalid_request' | 'invalid_event' = 'invalid_request',
): z.infer<TSchema> {
  const result = schema.safeParse(input);
  if (!result.success) throw new AppError(code, z.prettifyError(result.error));
  return result.data;
}
