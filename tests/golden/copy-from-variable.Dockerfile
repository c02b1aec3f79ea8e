FROM busybox
ARG S=a
COPY --from=$S /x /x
