FROM busybox
ARG S=a
RUN --mount=from=$S,target=/x true
