FROM busybox
RUN echo at eof \
