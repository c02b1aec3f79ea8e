# syntax=docker/dockerfile:1
ARG VERSION=1.0
FROM --platform=linux/amd64 busybox:latest AS base
MAINTAINER Jane Doe <jane@example.com>
LABEL org.opencontainers.image.version="${VERSION}" description="a test"
ENV PATH=/opt/bin:$PATH
ARG USER_ID=1000
RUN mkdir -p /opt/bin
CMD ["sh"]
ENTRYPOINT ["/bin/sh", "-c"]
EXPOSE 80 443/tcp 53/udp
WORKDIR /opt
COPY a.txt b.txt /opt/
ADD https://example.com/file.tar.gz /tmp/
USER 1000:1000
VOLUME /data /logs
SHELL ["/bin/sh", "-ec"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s CMD ["true"]
ONBUILD COPY . /app
