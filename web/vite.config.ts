import { defineConfig } from "vite";

// Built into dist/, which the gateway serves on the same origin as the API (WEB_DIR).
export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: { target: "es2022", sourcemap: false, assetsInlineLimit: 0 },
  server: { proxy: { "/api": "http://127.0.0.1:8080", "/clinic": "http://127.0.0.1:8080" } },
});
