# Build stage: the release binary, with the same locked dependencies CI tests.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY testkube ./testkube
RUN cargo build --release --locked --bin plugboard

# Final stage: distroless, no shell, no package manager; the nonroot user (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/plugboard /plugboard
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/plugboard"]
CMD ["run"]
