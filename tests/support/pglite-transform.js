// Jest runs test code in a vm context, where a dynamic import() (PGlite loads Node
// builtins with it) needs --experimental-vm-modules. This rewrites those imports to
// require(), so PGlite runs inside the test's context like every other module (one Date,
// one Uint8Array), unchanged otherwise. jest.config.js applies it to PGlite's bundle.
/* global __filename */
/* eslint-disable @typescript-eslint/no-require-imports -- a jest transformer is plain CommonJS */
const { createHash } = require('node:crypto');
const { readFileSync } = require('node:fs');

const DYNAMIC_IMPORT = /\bimport\((["'])([\w:/.-]+)\1\)/g;
const DIRECTIVE = /^(["'])use strict\1;?/;
// The module's own require, under a name no bundled code shadows (emscripten declares `var require`).
const ALIAS = 'var __parleyJestRequire = require;';

const SELF = readFileSync(__filename, 'utf8');

module.exports = {
  // Jest caches transformed files; a change here must invalidate them.
  getCacheKey(source, path) {
    return createHash('sha256').update(SELF).update(path).update(source).digest('hex');
  },
  process(source) {
    const code = source.replace(DYNAMIC_IMPORT, 'Promise.resolve().then(() => __parleyJestRequire($1$2$1))');
    const directive = DIRECTIVE.exec(code);
    return { code: directive ? `${directive[0]}${ALIAS}${code.slice(directive[0].length)}` : `${ALIAS}${code}` };
  },
};
