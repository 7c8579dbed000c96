# One image for every Taskpool node; SERVICES picks what a container runs (see README, "Cluster mode").
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
USER node
EXPOSE 8081 8080
CMD ["node", "--import", "./lib/early-signals.mjs", "--import", "tsx", "server.ts"]
