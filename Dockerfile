# oceanbridge container image (NOT built in this project's CI: no container daemon
# there; see docs/install.md "Container").
#   docker build -t oceanbridge .
#   docker run -d --name oceanbridge -p 8080:8080 \
#     -v ./oceanbridge.toml:/etc/oceanbridge/oceanbridge.toml:ro \
#     -v oceanbridge-state:/var/lib/oceanbridge \
#     -e OCEANBRIDGE_PASSWORD=... oceanbridge
# The config must bind the dashboard to 0.0.0.0:8080 ([web] bind) to be reachable.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The commit for --version (.git is not copied into the build context).
ARG OCEANBRIDGE_COMMIT=unknown
ENV OCEANBRIDGE_COMMIT=${OCEANBRIDGE_COMMIT}
# The `dist` profile (Cargo.toml): fat LTO and stripped, what ships.
RUN cargo build --profile dist --locked -p oceanbridge \
 && install -m 0755 target/dist/oceanbridge /usr/local/bin/oceanbridge

FROM debian:bookworm-slim
# curl for the HEALTHCHECK only (TLS roots are built into the binary).
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/oceanbridge --no-create-home oceanbridge \
 && install -d -m 0700 -o oceanbridge -g oceanbridge /var/lib/oceanbridge \
 && install -d -m 0755 /etc/oceanbridge
COPY --from=build /usr/local/bin/oceanbridge /usr/bin/oceanbridge
USER 10001:10001
# The state directory: history.db, client-ids.json, capture/. Keep it on a volume.
VOLUME ["/var/lib/oceanbridge"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/bin/oceanbridge"]
CMD ["run", "--config", "/etc/oceanbridge/oceanbridge.toml", "--data-dir", "/var/lib/oceanbridge"]
