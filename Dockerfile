# devicetrust-server: multi-stage build (docs/OPERATIONS.md, "Packaging").
# Not built on the project's machines (no container engine there).

# ---- build ----
FROM rust:1-bookworm AS build
# The commit for --version: .git is not in the context (.dockerignore).
ARG DEVICETRUST_COMMIT=unknown
ENV DEVICETRUST_COMMIT=${DEVICETRUST_COMMIT}
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p devicetrust-server \
 && install -D -m 0755 target/release/devicetrust-server /out/devicetrust-server \
 && install -d -m 0700 /out/data

# ---- run ----
# glibc, CA certificates and tzdata; no shell, no package manager; runs as
# the image's `nonroot` user (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/devicetrust-server /usr/local/bin/devicetrust-server
COPY --from=build --chown=65532:65532 /out/data /var/lib/devicetrust
USER 65532:65532
WORKDIR /var/lib/devicetrust
VOLUME ["/var/lib/devicetrust"]
ENV DEVICETRUST_DATABASE=sqlite:///var/lib/devicetrust/devicetrust.db \
    DEVICETRUST_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/devicetrust-server"]
CMD ["serve"]
