FROM busybox
ARG T=volume
RUN --mount=type=$T,target=/x true
