import { standaloneBackend } from './support/backend';
import { webClientScenarios } from './support/scenarios';

// The same scenarios against `npm start`'s single process: the message service and a
// gateway on one port, embedded PostgreSQL and the in-process bus, serving the app itself.

jest.setTimeout(60_000);

describe('web client on the single-process server', () => {
  webClientScenarios(standaloneBackend);
});
