# Images built FROM scratch out of the static binaries that cargo built.
# Nothing is pulled and nothing is compiled inside: build the binaries first,
#   cargo build --release --workspace
#   docker build --target pause -t pause:dev .
# The build context is limited by .dockerignore to the release binaries
# (and, for the supervisor image, the files docker/stage.sh staged).

# The pod sandbox image: a drop-in for the upstream Kubernetes pause image
# (same shape: /pause, USER 65535:65535, ENTRYPOINT ["/pause"]).
FROM scratch AS pause
COPY target/release/pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]

# A pod in a container: the supervisor as PID 1 runs the two-container demo
# pod of docker/pod.yaml (busybox httpd and a sidecar fetching it over
# 127.0.0.1). Stage its files first (a static supervisor built by the
# script, busybox-static, the CNI plugins and the glibc files they load, the
# manifest and the CNI network):
#   cargo build --release --workspace && docker/stage.sh
#   docker build --target supervisor -t podvisor/supervisor .
#   docker run --rm --privileged podvisor/supervisor
# --privileged gives the supervisor what it needs inside: writable cgroups,
# and the capabilities for namespaces, mounts and the pod's bridge (in the
# container's own network namespace: docker run --network none works).
FROM scratch AS supervisor
# The static supervisor is in the staged rootfs (/usr/local/bin/supervisor).
# supervisor-init (static and libc-free, like pause) goes beside it: the
# PID 1 that `supervisor init` execs.
COPY docker/context/rootfs/ /
COPY target/release/pause target/release/supervisor-init /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/supervisor"]
CMD ["run", "/etc/supervisor/pod.yaml"]
