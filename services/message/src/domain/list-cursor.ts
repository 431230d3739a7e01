import { ParleyError } from '@parley/protocol';

export interface ListPosition {
  activityMicros: number;
  id: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Opaque to clients; microsecond precision so no two rows share a position by rounding. */
export function encodeListCursor(position: ListPosition): string {
  return Buffer.from(`${position.activityMicros}.${position.id}`, 'utf8').toString('base64url');
}

export function decodeListCursor(cursor: string): ListPosition {
  const [micros, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('.');
  const activityMicros = Number(micros);
  if (!Number.isSafeInteger(activityMicros) || id === undefined || !UUID.test(id)) {
    throw new ParleyError('VALIDATION_FAILED', 'The cursor is not one this API issued.');
  }
  return { activityMicros, id };
}
