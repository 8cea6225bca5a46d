/** The slice of a pino-style logger the store uses; pino's `Logger` satisfies it. */
export interface StoreLogger {
  warn(obj: object, msg: string): void;
}
