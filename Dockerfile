# syntax=docker/dockerfile:1
FROM node:20.20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY scripts/build.js ./scripts/build.js
COPY src ./src
RUN npm run build

FROM node:20.20-bookworm-slim AS runtime
ENV NODE_ENV=production PORT=3000
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The embedded database's templates that `npm run build` made (initdb's output, and with this build's migrations
# applied: src/database/pglite-template.ts), so a fresh data dir is a copy instead of an initdb; the cache stays
# writable by `node` so a template that is missing is made once, not at every start.
COPY --from=build --chown=node:node /app/node_modules/.cache/automl-pglite-template ./node_modules/.cache/automl-pglite-template
RUN mkdir -p /app/.data && chown node:node /app/.data /app/node_modules/.cache
USER node
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --retries=5 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/main.js"]
