// Container HEALTHCHECK: exit 0 if and only if GET http://127.0.0.1:$PORT/health (liveness) answers 200
// within 3 s. Liveness, not readiness: Docker's health means "restart this process if it fails" to whoever
// acts on it (an autoheal container, an orchestrator), and a database or Redis outage is not cured by
// restarting the app. Readiness (/health/ready) is for the reverse proxy. Plain JavaScript run by node,
// because slim and alpine images have no curl.
// `node /app/healthcheck.js ready` asks /health/ready instead and prints its answer: the deploy's readiness
// gate (components/app.ts) runs it in a new container before the old one is drained.
"use strict";
const http = require("node:http");

const port = Number(process.env.PORT || 8000);
const ready = process.argv[2] === "ready";
const path = ready ? "/health/ready" : "/health";
const request = http.get({ host: "127.0.0.1", port, path, timeout: 3000 }, (response) => {
    let body = "";
    response.setEncoding("utf8");
    response.on("data", (chunk) => (body += chunk));
    response.on("end", () => {
        if (ready) process.stdout.write(`${response.statusCode} ${body.slice(0, 2000)}\n`);
        process.exit(response.statusCode === 200 ? 0 : 1);
    });
});
request.on("timeout", () => {
    process.stderr.write(`healthcheck: no answer from 127.0.0.1:${port}${path} within 3 s\n`);
    request.destroy();
    process.exit(1);
});
request.on("error", (err) => {
    const closed = err.code === "ECONNREFUSED" ? " (the port opens once the app is ready: see its log)" : "";
    process.stderr.write(`healthcheck: ${err.message}${closed}\n`);
    process.exit(1);
});
