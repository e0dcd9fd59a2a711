# Penumbra's own image for docker-compose.yml. Debian-based (glibc) because @duckdb/node-api
# ships prebuilt glibc binaries.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
# Dev dependencies are needed to build the console; the layer is cached until the lockfile changes.
RUN npm ci --no-audit --no-fund
COPY . .
RUN if [ -f console/index.html ]; then npm run build:console; fi
ENV PENUMBRA_DATA_DIR=/data \
    PORT=7070 \
    HOST=0.0.0.0
EXPOSE 7070
VOLUME ["/data"]
CMD ["npm", "start"]
