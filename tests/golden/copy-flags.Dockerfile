FROM busybox
COPY --chown=app:app --chmod=640 --link --parents --exclude=*.tmp --exclude=**/.git src/ dir/*.c /dst/
COPY ["file with spaces.txt", "/dst/"]
COPY --from=nginx:latest /etc/nginx/nginx.conf /nginx.conf
ADD --chown=1:2 --link --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d --keep-git-dir=true --unpack=false https://example.com/a.tar.gz /tmp/
ADD --exclude=*.md git@github.com:user/repo.git /repo
