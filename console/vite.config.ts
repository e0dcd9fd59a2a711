// Operator console build. `npx vite build console` or `npx vite --config console/vite.config.ts`.
// The API server serves dist/ at `/` under a strict CSP (script-src 'self'): no inline scripts.
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const dir = path.dirname(fileURLToPath(import.meta.url));
const api = process.env.PENUMBRA_API ?? 'http://127.0.0.1:7070';

export default defineConfig({
  root: dir,
  base: '/',
  plugins: [svelte()],
  build: { outDir: path.join(dir, 'dist'), emptyOutDir: true, target: 'es2022', sourcemap: false },
  server: {
    port: 5173,
    proxy: {
      '/api': { target: api, changeOrigin: true },
      '/d': { target: api, changeOrigin: true },
      '/launch': { target: api, changeOrigin: true },
    },
  },
});
