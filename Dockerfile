# syntax=docker/dockerfile:1
# The InfiniteScribe Realtime server: one instance per container. Built by deploy/docker-compose.yml
# (`docker compose -f deploy/docker-compose.yml up --build`); `docker build -t infinitescribe .` works too.
#
# The backend runs its TypeScript through tsx (the workspace packages export their sources), so the
# runtime keeps the full `npm ci` install, devDependencies included.

ARG NODE_VERSION=24

# Dependencies: the manifests and the lockfile only, so this layer is rebuilt only when they change.
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY packages/protocol/package.json packages/protocol/
COPY packages/client/package.json packages/client/
COPY packages/react/package.json packages/react/
COPY packages/server/package.json packages/server/
COPY examples/writing-app/package.json examples/writing-app/
COPY apps/backend/package.json apps/backend/
COPY apps/frontend/package.json apps/frontend/
RUN npm ci --no-audit --no-fund

# Sources, and the UI the server serves (apps/frontend/dist).
FROM deps AS build
COPY tsconfig.base.json ./
COPY packages ./packages
COPY apps ./apps
RUN npm run build -w apps/frontend

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data
WORKDIR /app
# Owned by root, read-only for the server; only the embedded store folder is writable (unused when
# DATABASE_URL is set).
COPY --from=build /app ./
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node is PID 1 and handles SIGTERM itself: streams end cleanly, clients resume on another instance.
STOPSIGNAL SIGTERM
CMD ["node", "--import", "tsx", "apps/backend/src/main.ts"]
