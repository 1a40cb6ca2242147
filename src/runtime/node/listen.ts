import { serve } from '@hono/node-server';
import { createServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../../core/ports.js';
import type { HttpsSettings } from './tls.js';

type FetchHandler = Parameters<typeof serve>[0]['fetch'];
type NodeServer = ReturnType<typeof serve>;

export interface Listeners {
  /** The HTTP listener's URL, or the HTTPS one's when HTTP is off (`--no-http`). */
  readonly url: string;
  readonly httpsUrl?: string;
  close(): Promise<void>;
}

/**
 * One app behind up to two listeners on `--host`, as smart-proxy runs `http_port` and `https_port` side by side. The
 * app tells them apart by the verified client certificate the HTTPS socket carries (tls.ts).
 */
export async function listen(
  fetch: FetchHandler,
  opts: { host: string; httpPort: number | null; https: HttpsSettings | null; logger: Logger },
): Promise<Listeners> {
  const servers: NodeServer[] = [];
  const urlOf = async (server: NodeServer, scheme: string) => {
    servers.push(server);
    await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
    const { port } = server.address() as AddressInfo;
    return `${scheme}://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`;
  };
  try {
    const httpUrl =
      opts.httpPort === null
        ? undefined
        : await urlOf(serve({ fetch, port: opts.httpPort, hostname: opts.host }), 'http');
    let httpsUrl: string | undefined;
    if (opts.https) {
      const server = serve({
        fetch,
        port: opts.https.port,
        hostname: opts.host,
        createServer,
        serverOptions: opts.https.serverOptions,
      });
      // A refused handshake (no certificate, another CA, expired) never reaches the app, so it is logged here.
      // Node destroys the socket before 'tlsClientError': the peer address is read (and cached by net.Socket) on
      // connection, and the verification verdict is the socket's authorizationError (the error is a mere reset).
      server.on('connection', (raw: Socket) => void raw.remoteAddress);
      server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) =>
        opts.logger.warn('tls handshake refused', {
          remote: socket.remoteAddress ?? (socket as { _parent?: Socket })._parent?.remoteAddress,
          reason: socket.authorizationError ?? err.code,
          error: err.message.trim(),
        }),
      );
      httpsUrl = await urlOf(server, 'https');
    }
    const url = httpUrl ?? httpsUrl;
    if (url === undefined) throw new Error('listen: neither HTTP nor HTTPS configured');
    return { url, ...(httpsUrl ? { httpsUrl } : {}), close: () => closeAll(servers) };
  } catch (err) {
    await closeAll(servers);
    throw err;
  }
}

async function closeAll(servers: readonly NodeServer[]): Promise<void> {
  await Promise.all(
    servers.map((server) => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      return closed;
    }),
  );
}
