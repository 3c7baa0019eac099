// A port for a process that must be told its port before it starts (redis-server, a sidecar restarted on the same
// port, a redirect URI). Picked below the kernel's ephemeral range (32768–60999 on Linux), which it never hands out
// on its own: a port chosen by listen(0) and then freed can be taken as the source port of any outgoing
// connection of the parallel suite before the process binds it (EADDRINUSE). Here only another test picking the
// same random port in the same moment could collide. Where the process can report its port, listen on 0 instead.
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

const LOW = 20_000;
const HIGH = 32_767;

function udpBindable(port: number): Promise<boolean> {
  const socket = createSocket('udp4');
  return new Promise((resolve) => {
    socket.once('error', () => resolve(false));
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

function bindable(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A port on 127.0.0.1 outside the ephemeral range that was free a moment ago, for TCP and, with `udp`, for UDP too
 * (a DNS server binds both).
 */
export async function freePort(options: { readonly udp?: boolean } = {}): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    if ((await bindable(port)) && (options.udp !== true || (await udpBindable(port)))) return port;
  }
  throw new Error(`no free port in ${LOW}–${HIGH} after 50 attempts`);
}
