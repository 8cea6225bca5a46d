import { BusLayoutError, createLogger, listenOnSockets } from '@infinitescribe/server';
import { buildApp } from './app.js';
import { ConfigError, parseConfig } from './config.js';

/**
 * Process entry: config → app → listen, and a graceful stop on SIGTERM/SIGINT that ends streams
 * cleanly (clients resume elsewhere), records the id head, closes the store, and exits within
 * SHUTDOWN_TIMEOUT_MS whatever happens.
 */
async function main(): Promise<void> {
  let config;
  try {
    config = parseConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(78);
    }
    throw error;
  }
  const logger = createLogger({ level: config.logLevel });
  if (config.usesDevSecret) {
    logger.warn('JWT_SECRET is not set: using the public development secret. Never do this in production.');
  }
  const app = await buildApp({ config, logger });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error('shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs).unref();
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  const address = await listenOnSockets(app, {
    port: config.port,
    host: config.host,
    backlog: config.listenBacklog,
    ...(config.listenSockets === undefined ? {} : { sockets: config.listenSockets }),
  });
  logger.info(`InfiniteScribe Realtime listening on ${address} (UI at ${address}/)`);
  // A line for humans and for test harnesses that wait on it.
  console.log(`READY ${address}`);
}

main().catch((error: unknown) => {
  // Instances running another REDIS_BUS_PARTITIONS: the operator's to fix, as a configuration error.
  if (error instanceof BusLayoutError) {
    console.error(error.message);
    process.exit(78);
  }
  console.error(error);
  process.exit(1);
});
