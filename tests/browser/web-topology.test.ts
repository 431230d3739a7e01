import { topologyBackend } from './support/backend';
import { webClientScenarios } from './support/scenarios';

// The web client in Chromium against the full topology: nginx (TLS) serves the app at `/`
// and proxies /v1 to the message service and /ws to two gateways.

jest.setTimeout(60_000);

describe('web client through nginx', () => {
  webClientScenarios(() => topologyBackend('web'));
});
