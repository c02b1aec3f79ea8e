FROM busybox
COPY --chown=1 -- --weird-name /dst
RUN -- echo no flags here
