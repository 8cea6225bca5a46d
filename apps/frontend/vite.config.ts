import react from '@vitejs/plugin-react';
import { defaultClientConditions, defineConfig } from 'vite';

const backend = 'http://127.0.0.1:3000';

export default defineConfig({
  plugins: [react()],
  // The workspace packages' TypeScript sources, so the UI builds and serves without building them.
  resolve: { conditions: ['@infinitescribe/source', ...defaultClientConditions] },
  build: { outDir: 'dist', emptyOutDir: true },
  server: {
    proxy: { '/api': backend, '/readyz': backend, '/healthz': backend, '/metrics': backend },
  },
});
