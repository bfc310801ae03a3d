// Builds the web UI into one directory that the server embeds (see crates/citydata-server/build.rs).
// `npm run dev` serves the pages with live reload and proxies the APIs to a running citydata server
// (CITYDATA_API, default http://127.0.0.1:8080).
import { defineConfig } from 'vite';

const api = process.env.CITYDATA_API ?? 'http://127.0.0.1:8080';
const proxied = ['/api', '/tiles', '/ogc', '/sta', '/catalog', '/dataset/'];

export default defineConfig({
  build: {
    outDir: process.env.CITYDATA_WEB_OUT ?? 'dist',
    emptyOutDir: true,
    target: 'es2020',
    // MapLibre is one large chunk, loaded only by the map page.
    chunkSizeWarningLimit: 1100,
    assetsInlineLimit: 0,
  },
  server: {
    proxy: Object.fromEntries(proxied.map((p) => [p, { target: api, changeOrigin: true }])),
  },
});
