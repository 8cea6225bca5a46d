/** Runs the example: `JWT_SECRET=… npm start -w examples/writing-app` (PORT, DATA_DIR optional). */
import { buildWritingApp } from './app.js';

const jwtSecret = process.env['JWT_SECRET'];
if (!jwtSecret || jwtSecret.length < 32) {
  console.error('JWT_SECRET (at least 32 characters) is required');
  process.exit(78);
}
const app = await buildWritingApp({ jwtSecret, dataDir: process.env['DATA_DIR'] ?? './data', logger: true });
const stop = () => void app.close();
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
const address = await app.listen({ port: Number(process.env['PORT'] ?? 4000), host: '127.0.0.1' });
console.log(`READY ${address}`);
