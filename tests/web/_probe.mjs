import net from 'node:net';
import {startServer} from './server.mjs';
const s = await startServer();
const sock = net.connect(s.port, '127.0.0.1'); sock.on('error', () => {});
sock.write('GET /health HTTP/1.1\r\nHost: x\r\n');
await new Promise(r => setTimeout(r, 300));
const t = Date.now(); const r = await s.stop(100_000); console.log('partial-request', JSON.stringify(r), Date.now() - t, 'ms');
sock.destroy();
