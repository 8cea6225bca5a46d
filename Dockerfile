# syntax=docker/dockerfile:1
# The InfiniteScribe Realtime server: one instance per container. Built by deploy/docker-compose.yml
# (`docker compose -f deploy/docker-compose.yml up --build`); `docker build -t infinitescribe .` works too.
#
# Built with every tool (TypeScript, Vite) in one stage; the image runs the compiled JavaScript
# with the backend's production dependencies only (no TypeScript, tsx, test or lint tools).

ARG NODE_VERSION=24

# The manifests and the lockfile only, so the install layers are rebuilt only when they change.
FROM node:${NODE_VERSION}-bookworm-slim AS manifests
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY packages/protocol/package.json packages/protocol/
COPY packages/client/package.json packages/client/
COPY packages/react/package.json packages/react/
COPY packages/server/package.json packages/server/
COPY examples/writing-app/package.json examples/writing-app/
COPY apps/backend/package.json apps/backend/
COPY apps/frontend/package.json apps/frontend/

# The build: every dependency, then the packages and the backend compiled (tsc, dist/) and the UI
# the server serves (apps/frontend/dist).
FROM manifests AS build
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.dist.json tsconfig.build.json ./
COPY scripts ./scripts
COPY packages ./packages
COPY apps ./apps
RUN npm run build

# What the backend needs at run time: its production dependencies and the workspace packages it
# imports (linked to packages/*, whose dist/ comes from the build).
FROM manifests AS production-dependencies
RUN npm ci --omit=dev --workspace=apps/backend --no-audit --no-fund

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data
WORKDIR /app
# Owned by root, read-only for the server; only the embedded store folder is writable (unused when
# DATABASE_URL is set).
COPY --from=production-dependencies /app ./
COPY --from=build /app/packages/protocol/dist packages/protocol/dist
COPY --from=build /app/packages/server/dist packages/server/dist
COPY --from=build /app/apps/backend/dist apps/backend/dist
COPY --from=build /app/apps/frontend/dist apps/frontend/dist
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node is PID 1 and handles SIGTERM itself: streams end cleanly, clients resume on another instance.
STOPSIGNAL SIGTERM
# --no-memory-reducer: a heap shrunk after a mass disconnect makes the reconnect burst pay a
# mark-compact at every step of its regrowth; --initial-old-space-size=256: a fresh instance's first
# connect burst grows the heap without a mark-compact; --max-semi-space-size=16: no young-generation
# pause longer than ~15 ms while streams open (docs/deploying.md, "V8 flags").
CMD ["node", "--no-memory-reducer", "--initial-old-space-size=256", "--max-semi-space-size=16", "apps/backend/dist/main.js"]
