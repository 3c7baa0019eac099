# meshauth image: build on Node 24 (same TypeScript output as on Node 20), run on distroless Node 24 as non-root.
# The process handles SIGTERM itself (graceful drain), so no init shim is needed.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bench ./bench
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
COPY --from=build --chown=65532:65532 /src/package.json ./
COPY --from=build --chown=65532:65532 /src/node_modules ./node_modules
COPY --from=build --chown=65532:65532 /src/dist ./dist
COPY --chown=65532:65532 deploy/policy.example.yaml ./deploy/policy.example.yaml
USER 65532:65532
# Ports: 15006 inbound mTLS, 15001 outbound (loopback), 15020 admin, 8443 CA API.
EXPOSE 15006 15020 8443
ENTRYPOINT ["/nodejs/bin/node", "dist/src/cli/main.js"]
CMD ["--help"]
