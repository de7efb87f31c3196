import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// `npm run dev` forwards the gateway's paths to a running gateway (default: `make run`'s port 8000).
const gateway = process.env.TH_GATEWAY_URL ?? "http://127.0.0.1:8000";
const gatewayPaths = ["/auth", "/api", "/readyz", "/healthz", "/dicom-web", "/wado", "/iiif", "/fhir"];

export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2020",
    sourcemap: false,
    reportCompressedSize: false,
    // The imaging viewer's cornerstone3D chunk (~1.7 MB) is loaded only when a study is opened.
    chunkSizeWarningLimit: 2048,
    rolldownOptions: {
      // cornerstone3D's codecs (emscripten) import fs/path on their Node.js code path only: not a problem.
      onwarn(warning, warn) {
        if (/externalized for browser compatibility/.test(warning.message) && /@cornerstonejs\/codec-/.test(warning.message)) return;
        warn(warning);
      },
      checks: { pluginTimings: false },
    },
  },
  server: {
    proxy: Object.fromEntries(gatewayPaths.map((path) => [path, { target: gateway, changeOrigin: false }])),
  },
});
