/**
 * A TCP proxy as its own process (`tsx tcp-proxy-process.ts <targetPort>`), so a test can kill
 * it with SIGKILL by PID: the way a real proxy dies, sockets torn down by the kernel.
 * Prints `PORT <n>` once listening.
 */
import { startTcpProxy } from './tcp-proxy.js';

const target = Number(process.argv[2]);
const proxy = await startTcpProxy(target);
console.log(`PORT ${proxy.port}`);
