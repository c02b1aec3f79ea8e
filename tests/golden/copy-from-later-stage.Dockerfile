FROM busybox AS first
COPY --from=second /x /x
FROM busybox AS second
RUN echo x > /x
FROM first
