import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Message } from '@parley/client';
import { httpRequest } from '@parley/deploy';
import type { Fleet, FleetClient, Ledger, RawSocket } from '../../e2e/support/fleet';

/** Frames per second a raw sender stays under (the gateway allows 20 per socket). */
const RAW_SEND_INTERVAL_MS = 60;

export interface RawSender {
  label: string;
  socket: RawSocket;
  /** Outcomes seen, in order, with when they were seen. */
  outcomes: Array<{ at: number; kind: 'acked' | 'failed' | 'timeout'; code?: string; retryable?: boolean }>;
}

/**
 * A Jepsen-style sender: a raw socket (through nginx) of `client`'s user that sends one
 * `send` frame at a time and logs its outcome in the ledger exactly as the wire gave it:
 * `ack` (with the stored message), `error` (code and `retryable`), or no reply within
 * `timeoutMs` (or the socket closed first): timed out, outcome unknown. It never retries a
 * client message id; the next send gets a new one. Runs while `running()`.
 */
export async function rawSendLoop(
  fleet: Fleet,
  client: FleetClient,
  conversationId: string,
  ledger: Ledger,
  running: () => boolean,
  options: { timeoutMs?: number; onSender?: (sender: RawSender) => void } = {},
): Promise<RawSender> {
  const socket = fleet.openRaw({ token: client.client.tokens.current!.accessToken });
  await socket.opened();
  const sender: RawSender = { label: `${client.label}-raw`, socket, outcomes: [] };
  options.onSender?.(sender);
  const run = randomBytes(3).toString('hex');
  for (let index = 0; running(); index += 1) {
    const startedAt = Date.now();
    const clientMessageId = `${sender.label}-${run}-${index}`;
    const body = `${sender.label} says #${index}`;
    ledger.noteSent(clientMessageId, sender.label, body, conversationId);
    try {
      const reply = await socket.request({ type: 'send', conversationId, clientMessageId, body }, options.timeoutMs ?? 5000);
      if (reply.type === 'ack' && reply['message']) {
        ledger.noteAcked(clientMessageId, reply['message'] as Message);
        sender.outcomes.push({ at: Date.now(), kind: 'acked' });
      } else {
        const code = String(reply.code ?? reply.type);
        const retryable = reply['retryable'] === true;
        ledger.noteFailed(clientMessageId, code, retryable);
        sender.outcomes.push({ at: Date.now(), kind: 'failed', code, retryable });
      }
    } catch {
      ledger.noteTimedOut(clientMessageId);
      sender.outcomes.push({ at: Date.now(), kind: 'timeout' });
      if (socket.closeCode !== undefined) break;
    }
    // Pacing the load under the per-socket frame limit, not waiting for anything.
    const spent = Date.now() - startedAt;
    if (spent < RAW_SEND_INTERVAL_MS) await new Promise((resolve) => setTimeout(resolve, RAW_SEND_INTERVAL_MS - spent));
  }
  return sender;
}

/**
 * An SDK client sending one message every `intervalMs` (steady load) while `running()`;
 * the SDK retries each with its client message id until acked, so an outcome is an ack or,
 * when the run ends first, pending.
 */
export async function pacedSendLoop(
  client: FleetClient,
  conversationId: string,
  ledger: Ledger,
  running: () => boolean,
  intervalMs: number,
): Promise<void> {
  const run = randomBytes(3).toString('hex');
  for (let index = 0; running(); index += 1) {
    const startedAt = Date.now();
    const clientMessageId = `${client.label}-${run}-${index}`;
    const body = `${client.label} says #${index}`;
    ledger.noteSent(clientMessageId, client.label, body, conversationId);
    ledger.noteAcked(clientMessageId, await client.client.send(conversationId, body, { clientMessageId }));
    // Pacing the load, not waiting for anything.
    const spent = Date.now() - startedAt;
    if (spent < intervalMs) await new Promise((resolve) => setTimeout(resolve, intervalMs - spent));
  }
}

/** Resident set size of a process in bytes (Linux /proc), or undefined once it is gone. */
export async function rssBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Polls a gateway's /readyz until it answers `status`, with a request deadline longer than
 * the gateway's own 2 s readiness ping (a frozen Redis answers nothing, so the gateway
 * answers only when its ping times out). Resolves with the time from `since` to that answer.
 */
export async function untilReadyzStatus(url: string, status: number, since: number, timeoutMs: number): Promise<number> {
  const deadline = since + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    try {
      const response = await httpRequest(`${url}/readyz`, { timeoutMs: 5000 });
      if (response.status === status) return Date.now() - since;
      last = `status ${response.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() >= deadline) throw new Error(`${url}/readyz did not answer ${status} within ${timeoutMs} ms (last: ${last})`);
    // Polling a probe: readiness is the event being waited for.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
