# syntax=docker/dockerfile:1
# optimizer-service image (also carries roadless-loadtest). Build from the repository root (the context is the whole reactor):
#   docker build -f deploy/docker/optimizer-service.Dockerfile -t roadless/optimizer-service:0.1.0 .
# Base images are pinned by tag and digest (deploy/README.md says where the digests come from).
ARG BUILD_IMAGE=eclipse-temurin:17.0.15_6-jdk-jammy@sha256:d9c5400568038464d7d6cf5e6326351845becc7ac565823ebf9ab8bcffb85e74
ARG RUNTIME_IMAGE=eclipse-temurin:17.0.15_6-jre-jammy@sha256:79d24d4b2916965947491f60bcb350ffd8a63fcf81accafa023135cc6a3279fc

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY . .
# The Maven cache mount keeps dependency downloads across builds without a layer per POM.
RUN --mount=type=cache,target=/root/.m2 \
    ./mvnw -B -q -pl optimizer-service,loadtest -am -DskipTests package \
 && cp optimizer-service/target/optimizer-service-all.jar /optimizer-service-all.jar \
 && cp loadtest/target/roadless-loadtest.jar /roadless-loadtest.jar

FROM ${RUNTIME_IMAGE}
RUN groupadd --system --gid 10001 roadless \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin roadless
WORKDIR /app
# Owned by root and read-only: the service cannot change its own code.
COPY --from=build --chmod=0444 /optimizer-service-all.jar /app/optimizer-service-all.jar
# The load-test tool travels with the server it tests: the loadtest Job runs this image with
# `java -jar /app/roadless-loadtest.jar` (deploy/k8s/components/loadtest).
COPY --from=build --chmod=0444 /roadless-loadtest.jar /app/roadless-loadtest.jar
USER 10001:10001
# gRPC over TLS (health, reflection, roadless.optimizer.v1), /metrics, plaintext health.
EXPOSE 50051 9464 8081
# Health comes from Kubernetes' grpc probes (plaintext health port 8081), so no HEALTHCHECK. Heap follows the memory limit.
# Memory per parameter (docs/BENCHMARKS.md, "Memory per parameter (issue 15)"): a young generation
# of fixed size keeps the garbage of a step from growing with the run (RSS growth 30-35 instead of
# 42-43 bytes per parameter at 10M), and the serial collector has no per-heap marking bitmap
# (ParallelGC commits 3.5% of -Xmx for it). The manifests set the same variable (an operator
# changes it there); the load-test Job that runs this image sets its own.
ENV JAVA_TOOL_OPTIONS="-XX:+UseSerialGC -Xmn128m"
# The Vector API module makes the gradient intake's copy-and-check passes about twice as fast
# (docs/BENCHMARKS.md); without it the server runs the scalar loops. The JVM warns once that an
# incubating module is in use.
ENTRYPOINT ["java", "-XX:MaxRAMPercentage=75", "-XX:+ExitOnOutOfMemoryError", "--add-modules=jdk.incubator.vector", "-jar", "/app/optimizer-service-all.jar"]
