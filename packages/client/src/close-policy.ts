import { CloseCodes } from '@parley/protocol';

/**
 * What to do after the socket closed:
 * - `reconnect-now`: the node is draining (1012); reconnect at once, after a short random
 *   pause so a drained node's clients do not all land on the next node together;
 * - `refresh-then-reconnect`: the access token expired (4001); refresh it, then reconnect;
 * - `login-required`: the token or session was refused (4002, 4003); stop and ask for a login;
 * - `backoff`: anything transient (1006, 1009, 1011, 4008, 4009, 4010, unknown codes);
 *   reconnect after a jittered, growing delay;
 * - `stop`: closed on purpose (1000) or for a protocol violation (1008); do not reconnect.
 */
export type CloseAction = 'reconnect-now' | 'refresh-then-reconnect' | 'login-required' | 'backoff' | 'stop';

const BY_POLICY = {
  no: 'stop',
  backoff: 'backoff',
  immediately: 'reconnect-now',
  'after-refresh': 'refresh-then-reconnect',
  'after-login': 'login-required',
} as const satisfies Record<(typeof CloseCodes)[keyof typeof CloseCodes]['reconnect'], CloseAction>;

const ACTIONS = new Map<number, CloseAction>(
  Object.values(CloseCodes).map((entry) => [entry.code, BY_POLICY[entry.reconnect]]),
);

/**
 * Maps a close code to the client's next step, from the `reconnect` column of
 * `CloseCodes` in the protocol package. Codes the protocol does not list (1001, 1005,
 * 1006 for a dropped TCP connection, 1015, 4000–4999 it may add later) mean `backoff`:
 * reconnecting slowly is always safe, giving up on an unknown code is not.
 */
export function closeAction(code: number): CloseAction {
  return ACTIONS.get(code) ?? 'backoff';
}
