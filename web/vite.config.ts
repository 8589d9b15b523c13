// Vite builds the console into hashed files under assets/ (cached for a year by the
// server) and one index.html; tools/web_embed.c compiles them into the tethys binary.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  base: '/',
  build: {
    target: 'es2020',
    assetsInlineLimit: 0, // no data: URLs for scripts; everything is a file of this origin
    modulePreload: { polyfill: false }, // the polyfill is an inline script, which CSP forbids
    chunkSizeWarningLimit: 1024,
    sourcemap: false,
  },
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  test: { include: ['src/**/*.test.ts'], environment: 'node' },
});
