# Tribunal's image, as helm/tribunal runs it (user 10001, read-only root, writable /var/lib/tribunal).
# Not built in CI: no Docker engine runs on the build machines (tests/unit/test_locks.py checks this file).
FROM python:3.11-slim
# Every dependency from the hash-pinned locks (`make lock` regenerates them): the image builds the same twice.
COPY requirements/engine.lock requirements/runtime.lock requirements/build.lock /tmp/requirements/
RUN pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements/engine.lock \
 && pip install --no-cache-dir --require-hashes -r /tmp/requirements/runtime.lock \
 && pip install --no-cache-dir --require-hashes -r /tmp/requirements/build.lock
# The package, with the policy library and the rules inside it (setup.py copies policies/ and rules/
# into tribunal/_bundled): they are the defaults, and TRIBUNAL_POLICY_DIR / TRIBUNAL_RULES_DIR (or a
# mounted folder) replace them.
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY service service
COPY policies policies
COPY rules rules
RUN pip install --no-cache-dir --no-deps --no-build-isolation . && rm -rf /src /tmp/requirements
WORKDIR /app
RUN useradd --uid 10001 --no-create-home tribunal && mkdir -p /var/lib/tribunal && chown 10001 /var/lib/tribunal
USER 10001
EXPOSE 8443
ENTRYPOINT ["tribunal"]
CMD ["serve"]
