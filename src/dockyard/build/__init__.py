"""``dockyard build``: Dockerfile -> stages -> instructions -> (dispatcher/executor) -> image.

Front end (no execution, stdlib only, nothing imported here so ``import dockyard.build`` stays free):

- ``parser``       text -> nodes: directives (``# syntax/escape/check``), comments, continuations, JSON vs shell
                   form, flags, heredocs. ``parse(text, filename) -> ParseResult``; ``DockerfileError``.
- ``instructions`` node -> typed instruction (``RunInstruction``, ``CopyInstruction``...), flag and argument
                   checks, ``instr.expand(env)`` where BuildKit expands, ``to_json()``.
- ``mounts``       ``RUN --mount=...`` values (``parse_mount``).
- ``stages``       ``parse_dockerfile(text, filename) -> Dockerfile``: stages, meta ARGs, ``--target``,
                   ``stages_needed``, ``base_of``/``copy_source``/``mount_source``, ``platform_args``.
- ``shell``        ``expand(word, env)``, ``expand_words(text, env)``: ``$VAR``, ``${VAR:-x}``, quotes, escapes.
- ``dockerignore`` ``.dockerignore`` patterns (``read_patterns``, ``Matcher``, ``walk``).

Which instructions the builder expands: ADD, ARG, COPY (sources, dest, --chown, --chmod, heredoc bodies with an
unquoted delimiter), ENV, EXPOSE, FROM (with the global ARGs only), LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR, and
RUN's ``--mount`` values. Never: RUN/CMD/ENTRYPOINT commands (the shell expands at run time), HEALTHCHECK, SHELL,
MAINTAINER, ONBUILD (its trigger is expanded when it runs in the child build), COPY ``--from``.
"""
