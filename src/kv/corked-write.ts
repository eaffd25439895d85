/**
 * Coalesced socket writes: the first write of an event-loop turn corks the socket, and a
 * process.nextTick (which runs after the current promise jobs) uncorks it, so every frame written
 * in that burst — say, all the responses a batch of completions resolved — leaves in one writev
 * instead of one syscall each.
 */
import type { Socket } from 'node:net';

const corked = new WeakSet<Socket>();

function uncork(socket: Socket): void {
  corked.delete(socket);
  socket.uncork();
}

export function writeCoalesced(socket: Socket, frame: Uint8Array): void {
  if (!corked.has(socket)) {
    corked.add(socket);
    socket.cork();
    process.nextTick(uncork, socket);
  }
  socket.write(frame);
}
