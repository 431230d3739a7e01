import { randomBytes } from 'node:crypto';

export const PASSWORD = 'correct horse battery staple';

/** A username no other run or test has used. */
export function uniqueName(label: string): string {
  return `${label}_${randomBytes(3).toString('hex')}`;
}
