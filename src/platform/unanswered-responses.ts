// The HTTP/1.1 responses each connection still owes. node:http tells only the response it is writing when its
// connection closes ('close' from the socket); a response queued behind it (pipelining) hears nothing, so whatever
// waits for its 'close' (a place in a caller's share, the exchange forwarding its request) would wait for ever, and
// its request would go on to the app for a caller that has gone. Those are ended here as node:http ends the one it
// was writing: destroyed, then 'close'.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { answerClosesConnection } from './node-internals.js';

export class UnansweredResponses {
  readonly #bySocket = new WeakMap<Socket, Set<ServerResponse>>();

  /** `res` is due on `socket`: how many are due there now, this one included. */
  add(socket: Socket, res: ServerResponse): number {
    let due = this.#bySocket.get(socket);
    if (due === undefined) {
      const owed = new Set<ServerResponse>();
      due = owed;
      this.#bySocket.set(socket, owed);
      socket.once('close', () => {
        for (const queued of owed) abandonQueued(queued);
      });
    }
    due.add(res);
    return due.size;
  }

  /**
   * Whether a request node:http parsed on `socket` comes behind an answer that closes the connection (one still due
   * there says `Connection: close`, or the socket's writing side has ended). node:http emits every request it
   * parses, those pipelined behind such an answer too, and queues their answers; the connection closes first, so a
   * request served there would run while its caller never gets an answer, and a caller that sends it again on a new
   * connection would have it run twice. Such a request is left unanswered: the close is its answer.
   */
  behindClosingAnswer(socket: Socket): boolean {
    if (socket.writableEnded) return true;
    const due = this.#bySocket.get(socket);
    if (due === undefined) return false;
    for (const res of due) if (answerClosesConnection(res)) return true;
    return false;
  }

  /**
   * Whether an answer is owed on `res`'s connection after `res` (a request pipelined behind it). A lean-lane answer
   * has no node:http request and nothing behind it: false.
   */
  owedAfter(res: ServerResponse): boolean {
    const socket = (res.req as ServerResponse['req'] | undefined)?.socket;
    const due = socket === undefined || socket === null ? undefined : this.#bySocket.get(socket);
    if (due === undefined) return false;
    let found = false;
    for (const owed of due) {
      if (found) return true;
      found = owed === res;
    }
    return false;
  }

  /** The last answer owed on `socket` (the one a close must wait for), or undefined when none is. */
  lastOwed(socket: Socket): ServerResponse | undefined {
    let last: ServerResponse | undefined;
    for (const owed of this.#bySocket.get(socket) ?? []) last = owed;
    return last;
  }

  /** `res` was written whole ('finish'). */
  answered(socket: Socket, res: ServerResponse): void {
    this.#bySocket.get(socket)?.delete(res);
  }
}

/**
 * A response queued on a connection that closed; the one being written (it has the socket) heard node:http itself.
 * One already destroyed while queued (its answer cut, a stall timer) is only marked: node:http emits its 'close' when
 * it gets the socket, which it never will now, so it is told here too.
 */
function abandonQueued(res: ServerResponse): void {
  if (res.socket !== null || res.closed) return;
  if (!res.destroyed) res.destroy();
  res.emit('close');
}
