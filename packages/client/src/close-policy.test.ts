import { CloseCodes } from '@parley/protocol';
import { closeAction } from './close-policy';

describe('closeAction', () => {
  test.each([
    [1000, 'stop'],
    [1008, 'stop'],
    [1009, 'backoff'],
    [1011, 'backoff'],
    [1012, 'reconnect-now'],
    [4001, 'refresh-then-reconnect'],
    [4002, 'login-required'],
    [4003, 'login-required'],
    [4008, 'backoff'],
    [4009, 'backoff'],
    [4010, 'backoff'],
  ])('close code %i → %s', (code, action) => {
    expect(closeAction(code)).toBe(action);
  });

  test.each([1001, 1005, 1006, 1015, 4000, 4999])('unlisted code %i backs off (never gives up on an unknown code)', (code) => {
    expect(closeAction(code)).toBe('backoff');
  });

  test('covers every close code the protocol defines, as its reconnect column says', () => {
    const expected = {
      no: 'stop',
      backoff: 'backoff',
      immediately: 'reconnect-now',
      'after-refresh': 'refresh-then-reconnect',
      'after-login': 'login-required',
    } as const;
    for (const entry of Object.values(CloseCodes)) {
      expect(closeAction(entry.code)).toBe(expected[entry.reconnect]);
    }
  });
});
