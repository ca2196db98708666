# syntax=docker/dockerfile:1
# checkpoint-service image. Build from the repository root (the context is the whole reactor):
#   docker build -f deploy/docker/checkpoint-service.Dockerfile -t roadless/checkpoint-service:0.1.0 .
# Base images are pinned by tag and digest (deploy/README.md says where the digests come from).
ARG BUILD_IMAGE=eclipse-temurin:17.0.15_6-jdk-jammy@sha256:d9c5400568038464d7d6cf5e6326351845becc7ac565823ebf9ab8bcffb85e74
ARG RUNTIME_IMAGE=eclipse-temurin:17.0.15_6-jre-jammy@sha256:79d24d4b2916965947491f60bcb350ffd8a63fcf81accafa023135cc6a3279fc

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/.m2 \
    ./mvnw -B -q -pl checkpoint-service -am -DskipTests package \
 && cp checkpoint-service/target/checkpoint-service-all.jar /checkpoint-service-all.jar

FROM ${RUNTIME_IMAGE}
RUN groupadd --system --gid 10001 roadless \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin roadless
WORKDIR /app
COPY --from=build --chmod=0444 /checkpoint-service-all.jar /app/checkpoint-service-all.jar
USER 10001:10001
# gRPC over TLS (health, roadless.checkpoint.v1), Prometheus /metrics, plaintext health.
EXPOSE 50053 9464 8081
ENTRYPOINT ["java", "-XX:MaxRAMPercentage=75", "-XX:+ExitOnOutOfMemoryError", "-jar", "/app/checkpoint-service-all.jar"]
