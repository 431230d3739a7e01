#!/usr/bin/env node
// `npm run keygen [kid]`: prints a new Ed25519 private JWK for AUTH_SIGNING_KEY.
import { generateSigningJwk } from './keys';

const kid = process.argv[2] ?? `k${new Date().toISOString().slice(0, 10).replaceAll('-', '')}`;
generateSigningJwk(kid).then(
  (jwk) => process.stdout.write(`${JSON.stringify(jwk)}\n`),
  (error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(1);
  },
);
