FROM busybox
RUN echo zero > /zero
FROM busybox AS one
RUN echo one > /one
FROM busybox AS unused
RUN echo never built for the last target
FROM scratch
COPY --from=0 /zero /
COPY --from=one /one /
