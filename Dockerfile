# Multi-stage build: compile in the Rust image, run from a small Debian image as a non-root user.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY fake-ollama ./fake-ollama
COPY bench/client ./bench/client
COPY src ./src
RUN cargo build --release --locked --bin ollama-gateway

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home gateway \
    && mkdir /data && chown gateway /data
COPY --from=build /src/target/release/ollama-gateway /usr/local/bin/ollama-gateway
USER gateway
ENV GATEWAY_LISTEN=0.0.0.0:8080 \
    OLLAMA_URL=http://ollama:11434 \
    GATEWAY_DB=sqlite:///data/ollama-gateway.db
# Managed keys, users and usage live here: mount a volume so they outlive the container.
VOLUME /data
EXPOSE 8080
# The binary checks itself: no curl needed in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["ollama-gateway", "healthcheck"]
ENTRYPOINT ["ollama-gateway"]
