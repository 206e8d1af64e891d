// Container HEALTHCHECK: exit 0 if and only if GET http://127.0.0.1:$PORT/health (liveness) answers 200
// within 3 s. Liveness, not readiness: Docker's health means "restart this process if it fails" to whoever
// acts on it (an autoheal container, an orchestrator), and a database or Redis outage is not cured by
// restarting the app. Readiness (/health/ready) is for the reverse proxy. Plain JavaScript run by node,
// because slim and alpine images have no curl.
"use strict";
const http = require("node:http");

const port = Number(process.env.PORT || 8000);
const request = http.get({ host: "127.0.0.1", port, path: "/health", timeout: 3000 }, (response) => {
    response.resume();
    process.exit(response.statusCode === 200 ? 0 : 1);
});
request.on("timeout", () => {
    process.stderr.write(`healthcheck: no answer from 127.0.0.1:${port}/health within 3 s\n`);
    request.destroy();
    process.exit(1);
});
request.on("error", (err) => {
    process.stderr.write(`healthcheck: ${err.message}\n`);
    process.exit(1);
});
