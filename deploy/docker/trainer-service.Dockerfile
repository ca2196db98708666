# syntax=docker/dockerfile:1
# trainer-service image, CPU or CUDA. Build from the repository root:
#   docker build -f deploy/docker/trainer-service.Dockerfile -t roadless/trainer-service:0.1.0 .
#   docker build -f deploy/docker/trainer-service.Dockerfile --build-arg MAVEN_PROFILES=cuda \
#     -t roadless/trainer-service:0.1.0-cuda .
# The CUDA build bundles ND4J's CUDA backend; the node supplies the NVIDIA driver (through the
# NVIDIA container toolkit). Base images are pinned by tag and digest (see deploy/README.md).
ARG BUILD_IMAGE=eclipse-temurin:17.0.15_6-jdk-jammy@sha256:d9c5400568038464d7d6cf5e6326351845becc7ac565823ebf9ab8bcffb85e74
ARG RUNTIME_IMAGE=eclipse-temurin:17.0.15_6-jre-jammy@sha256:79d24d4b2916965947491f60bcb350ffd8a63fcf81accafa023135cc6a3279fc

FROM ${BUILD_IMAGE} AS build
ARG MAVEN_PROFILES=
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/.m2 \
    ./mvnw -B -q -pl trainer-service -am -DskipTests ${MAVEN_PROFILES:+-P${MAVEN_PROFILES}} package \
 && cp trainer-service/target/trainer-service-all.jar /trainer-service-all.jar

FROM ${RUNTIME_IMAGE}
RUN groupadd --system --gid 10001 roadless \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin roadless
WORKDIR /app
COPY --from=build --chmod=0444 /trainer-service-all.jar /app/trainer-service-all.jar
USER 10001:10001
# Control gRPC over TLS (health, roadless.trainer.v1), /metrics, plaintext health.
EXPOSE 50052 9464 8081
# JavaCPP unpacks ND4J's native libraries on start; the root file system is read-only in
# Kubernetes, so they go to /tmp (an emptyDir there).
ENTRYPOINT ["java", "-XX:MaxRAMPercentage=75", "-XX:+ExitOnOutOfMemoryError", "-Dorg.bytedeco.javacpp.cachedir=/tmp/javacpp", "-jar", "/app/trainer-service-all.jar"]
