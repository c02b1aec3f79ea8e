FROM busybox
RUN echo a \

    b
RUN echo done
