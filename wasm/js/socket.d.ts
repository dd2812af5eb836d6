// Types of web/pkg/socket.js, the page socket library (wasm/socket). Written by hand: the
// module starts itself and exports no loader, and its Python-style sockets are made by
// `socket.socket(...)`, not by a class of its own.

/** Where the bridge goes: `relay` is the relay's `/ws` URL (absolute, or relative to the page;
 * default: this page's origin's `/ws`), `token` the relay's `--token` if it has one. */
export interface RelayOptions {
  relay?: string;
  token?: string;
}

/** Errors: `opened` rejects with an `Error` named `NetworkError` whose message is the relay's
 * reason (a refused target, a missing token); `closed` rejects with a `NetworkError` carrying
 * the WebSocket's close `code` and the relay's `reason` when the socket did not end cleanly. */
export interface SocketError extends Error {
  code?: number;
  reason?: string;
}

export interface TCPSocketOpenInfo {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<BufferSource>;
  remoteAddress: string;
  remotePort: number;
}

/** A TCP connection through the relay, shaped like the Direct Sockets API's TCPSocket. */
export class TCPSocket {
  constructor(remoteAddress: string, remotePort: number, options?: RelayOptions);
  readonly opened: Promise<TCPSocketOpenInfo>;
  readonly closed: Promise<void>;
  close(): Promise<void>;
  /** Closes the socket (`using`). */
  [Symbol.dispose](): void;
}

/** One datagram. */
export interface UDPMessage {
  data: BufferSource;
}

export interface UDPSocketOpenInfo {
  readable: ReadableStream<{ data: Uint8Array }>;
  writable: WritableStream<UDPMessage>;
  remoteAddress: string;
  remotePort: number;
}

export interface UDPSocketOptions extends RelayOptions {
  remoteAddress: string;
  remotePort: number;
}

/** UDP through the relay to one peer, shaped like the Direct Sockets API's UDPSocket. */
export class UDPSocket {
  constructor(options: UDPSocketOptions);
  readonly opened: Promise<UDPSocketOpenInfo>;
  readonly closed: Promise<void>;
  close(): Promise<void>;
  /** Closes the socket (`using`). */
  [Symbol.dispose](): void;
}

export const AF_INET: 2;
export const AF_INET6: 10;
export const SOCK_STREAM: 1;
export const SOCK_DGRAM: 2;

export type Address = [host: string, port: number];

/** A socket in Python's manner. Errors are `Error`s whose `name` is the Python class:
 * `TimeoutError`, `ConnectionRefusedError`, `ConnectionResetError`, `OSError`, `TypeError`... */
export interface PythonSocket {
  connect(address: Address): Promise<void>;
  send(data: BufferSource): Promise<number>;
  sendall(data: BufferSource): Promise<void>;
  sendto(data: BufferSource, address: Address): Promise<number>;
  recv(bufsize: number): Promise<Uint8Array>;
  recvfrom(bufsize: number): Promise<[Uint8Array, Address]>;
  /** `null` blocks; `0` never waits (a wait raises `BlockingIOError`); otherwise `TimeoutError` past it. */
  settimeout(seconds: number | null): void;
  gettimeout(): number | null;
  /** `setblocking(false)` is `settimeout(0)`, `setblocking(true)` is `settimeout(null)`. */
  setblocking(flag: boolean): void;
  close(): void;
  [Symbol.dispose](): void;
}

export const socket: {
  readonly AF_INET: 2;
  readonly AF_INET6: 10;
  readonly SOCK_STREAM: 1;
  readonly SOCK_DGRAM: 2;
  socket(family?: number, type?: number, options?: RelayOptions): PythonSocket;
};
