import { isIP, type Socket } from 'node:net';
import type { Client } from 'basic-ftp';
import { connectRefusal, type HostRules } from '../../core/host-rules.js';
import { PolicyRefusal } from './guarded-lookup.js';

/**
 * Every socket basic-ftp opens (the control connection and each passive data connection) connects only to an address
 * the host rules allow for `hostName`: a data address comes from the server, so it is checked like a resolved one.
 * Anything but a `{host, port}` connect to an IP address is refused (fail closed if basic-ftp ever changes).
 */
export function guardSockets(client: Client, rules: HostRules, hostName: string): void {
  const context = client.ftp;
  const create = context._newSocket.bind(context);
  context._newSocket = () => {
    const socket = create();
    const connect = socket.connect.bind(socket) as (...args: unknown[]) => Socket;
    socket.connect = ((...args: unknown[]) => {
      const options = args[0] as { host?: unknown } | undefined;
      const host = typeof options === 'object' && options !== null ? options.host : undefined;
      const address = typeof host === 'string' ? host.replace(/^\[(.*)\]$/, '$1') : '';
      const rule = isIP(address) ? connectRefusal(rules, hostName, address) : 'the host rules: not a checked address';
      if (rule === null) return connect(...args);
      const shown = address || String(host);
      process.nextTick(() =>
        socket.destroy(new PolicyRefusal(`connecting to ${shown} for ${hostName} is refused by ${rule}`)),
      );
      return socket;
    }) as typeof socket.connect;
    return socket;
  };
}
