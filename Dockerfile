# Penumbra's own image for docker-compose.yml. Debian-based (glibc) because @duckdb/node-api
# ships prebuilt glibc binaries.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# Dev dependencies are needed to build the console; the layer is cached until the lockfile changes.
RUN npm ci --no-audit --no-fund
COPY . .
RUN if [ -f console/index.html ]; then npm run build:console; fi
ENV PENUMBRA_DATA_DIR=/data \
    PORT=7070 \
    HOST=0.0.0.0
# Never as root (issue 17, item 7): the image's own `node` user (uid 1000) owns the data folder,
# which a fresh named volume inherits from this directory; the app files stay root-owned and
# read-only to it. The console build above needs a writable tree, so it runs before the switch.
# /data/warehouse exists in the image so the compose file's shared `warehouse` volume, mounted
# there, inherits node's ownership (the sink writes it; the other roles mount it read-only).
RUN mkdir -p /data/warehouse && chown -R node:node /data && chmod 0700 /data
USER node
EXPOSE 7070 7071
VOLUME ["/data"]
CMD ["npm", "start"]
