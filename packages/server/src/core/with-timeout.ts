/**
 * Rejects with `Error(message)` if `promise` has not settled within `ms`. The operation itself is
 * not cancelled (a Redis or SQL command already sent may still complete): a timeout means
 * "outcome unknown", which callers must treat as such.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
