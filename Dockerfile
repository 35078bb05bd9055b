# Images built FROM scratch out of the static binaries that cargo built.
# Nothing is pulled and nothing is compiled inside: build the binaries first,
#   cargo build --release --workspace
#   docker build --target pause -t pause:dev .
# The build context is limited by .dockerignore to the release binaries.

# The pod sandbox image: a drop-in for the upstream Kubernetes pause image
# (same shape: /pause, USER 65535:65535, ENTRYPOINT ["/pause"]).
FROM scratch AS pause
COPY target/release/pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
