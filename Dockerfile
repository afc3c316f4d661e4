# Tribunal's image, as helm/tribunal runs it (user 10001, read-only root, writable /var/lib/tribunal).
# Not built in CI: no Docker engine runs on the build machines.
FROM python:3.11-slim
WORKDIR /app
COPY requirements/engine.lock requirements/engine.lock
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements/engine.lock
COPY pyproject.toml README.md ./
COPY service service
RUN pip install --no-cache-dir .
COPY policies policies
COPY rules rules
RUN useradd --uid 10001 --no-create-home tribunal && mkdir -p /var/lib/tribunal && chown 10001 /var/lib/tribunal
USER 10001
ENV TRIBUNAL_POLICY_DIR=/app/policies TRIBUNAL_RULES_DIR=/app/rules
EXPOSE 8443
ENTRYPOINT ["tribunal"]
CMD ["serve"]
