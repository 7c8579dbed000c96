# One image for every Taskpool node; SERVICES picks what a container runs (see README, "Cluster mode").
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
# Node's compile cache (lib/compile-cache.mjs) must be writable by the user the node runs as.
RUN mkdir -p node_modules/.cache/taskpool/compile-cache && chown node node_modules/.cache/taskpool/compile-cache
USER node
EXPOSE 8081 8080
# What `npm start` runs: plain Node (it strips the TypeScript types itself), no loader; young generation capped
# (README, "Run it": memory).
CMD ["node", "--max-semi-space-size=8", "--import", "./lib/early-signals.mjs", "--import", "./lib/compile-cache.mjs", "server.ts"]
