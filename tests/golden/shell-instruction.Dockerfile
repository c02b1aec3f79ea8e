FROM busybox
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN echo in bash | cat
SHELL ["cmd", "/S", "/C"]
