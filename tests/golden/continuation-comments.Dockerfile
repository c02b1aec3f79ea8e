FROM busybox
RUN apt-get update \
    # a comment line inside the continuation is skipped
    && apt-get install -y \
#another one, at column 0
        curl \
        git
RUN echo \
  one\
two
