# One image for both components: `lb controller` and `lb speaker` (and the
# rest of the command line). Build from the repository root:
#   docker build -t lb:0.1.0 .
FROM docker.io/library/rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p lb-examples --bin lb \
 && cp target/release/lb /lb

# glibc and nothing else; nonroot (65532) by default. The speaker's
# DaemonSet runs it as root with only NET_RAW and NET_ADMIN.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /lb /usr/local/bin/lb
ENTRYPOINT ["/usr/local/bin/lb"]
