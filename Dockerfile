# syntax=docker/dockerfile:1
# The plugboard operator image: `docker build -t plugboard .` from the repository root.

# Build stage: the release binary from the locked dependencies the tests ran with. Debian
# bookworm, like the final image, so the binary links against the same glibc.
FROM rust:1-bookworm AS build
WORKDIR /src
# The workspace: the operator and the manifest of its test API server (a dev-dependency,
# not built here, but a workspace member cargo must see).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY apiserver ./apiserver
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin plugboard \
    && cp target/release/plugboard /plugboard

# Final stage: distroless (glibc and libgcc, no shell, no package manager), as the image's
# nonroot user. The binary needs nothing else: TLS is rustls, and it writes no files.
FROM gcr.io/distroless/cc-debian12:nonroot AS final
COPY --from=build /plugboard /plugboard
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/plugboard"]
CMD ["run"]
