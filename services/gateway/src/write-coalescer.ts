import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

/**
 * Joins the frames a socket is sent during one turn of the event loop into one write.
 *
 * ws writes every frame as soon as it is sent: a socket that gets ten frames from one
 * Redis read costs ten syscalls. Corking the socket on its first frame of the turn and
 * uncorking every corked socket once, when the turn's I/O callbacks are done
 * (setImmediate), makes that one writev. On a 2-core box this is the difference between
 * ~90k and ~740k deliveries/s for a bare ws broadcast (bench/results). One timer for all
 * sockets, not one per socket. Frames still leave within the same loop iteration.
 *
 * ws has no cork API of its own; its maintainers point to the socket's own `cork()`
 * (websockets/ws#1999). Corked bytes count in `bufferedAmount`: `release` writes them
 * out before the slow-consumer limit is applied, so the limit sees only what the peer
 * has not read.
 */
export class WriteCoalescer {
  private readonly corked = new Set<Duplex>();
  private scheduled = false;

  /** Holds the socket's writes until the end of this turn. */
  hold(ws: WebSocket): void {
    const raw = (ws as unknown as { _socket?: Duplex })._socket;
    if (!raw || this.corked.has(raw)) return;
    raw.cork();
    this.corked.add(raw);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /**
   * Writes what the socket holds now, ahead of the turn's end. Corked bytes count in
   * `bufferedAmount` though the kernel would take them at once: before judging a socket
   * slow, flush it, so only bytes the peer is really not reading count.
   */
  release(ws: WebSocket): boolean {
    const raw = (ws as unknown as { _socket?: Duplex })._socket;
    if (!raw || !this.corked.delete(raw)) return false;
    raw.uncork();
    return true;
  }

  /** Sockets corked now (a gauge for tests). */
  get holding(): number {
    return this.corked.size;
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    // A socket destroyed meanwhile ignores uncork().
    for (const raw of this.corked) raw.uncork();
    this.corked.clear();
  };
}
