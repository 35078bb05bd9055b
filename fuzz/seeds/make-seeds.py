#!/usr/bin/env python3
"""Writes the hand-written seeds into fuzz/corpus/<target>/seed-*: real
manifests (tests/manifests, examples/pod.yaml), quantities, CNI results as
Debian's plugins print them, and small real layer tars (plain, gzip, zstd)
with directories, files, links, whiteouts, an opaque directory and an xattr.
Run from the repository root; `cargo fuzz cmin` keeps what adds coverage."""
import glob, gzip, io, os, shutil, subprocess, tarfile

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
corpus = os.path.join(root, "fuzz", "corpus")

def put(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(corpus, target, "seed-" + name), "wb") as f:
        f.write(data)

# Manifests: every good one, the example, a sample of the bad ones.
for path in sorted(glob.glob(os.path.join(root, "tests/manifests/good/*.yaml"))) + [
    os.path.join(root, "examples/pod.yaml")
]:
    put("manifest", "good-" + os.path.basename(path), open(path, "rb").read())
for path in sorted(glob.glob(os.path.join(root, "tests/manifests/bad/*.yaml")))[::4]:
    put("manifest", "bad-" + os.path.basename(path), open(path, "rb").read())
put("manifest", "anchors.yaml", """apiVersion: v1
kind: Pod
metadata: {name: a, labels: &l {app: a}}
spec:
  containers:
  - &c {name: c, image: busybox, command: [sh, -c, "sleep 1"], resources: {limits: {memory: 64Mi, cpu: 250m}}}
x: *l
""")

# Quantities (Kubernetes' own test cases and edges).
for i, q in enumerate("""0 1 100m 0.5 1.5Gi 64Mi 1e3 1E3 2k 1Ki 1Ei 9Ei 1n 1u 500m -1 +1 .5 5. 1e-3 100Xi 1.000000001 18446744073709551616 0.0001m 1e308 Mi 12345678901234567890123456789012345678901234567890""".split()):
    put("quantity", f"{i:02}", q)

# CNI results.
put("cni_result", "bridge.json", """{
  "cniVersion": "1.0.0",
  "interfaces": [
    {"name": "podvisor0", "mac": "aa:bb:cc:dd:ee:01"},
    {"name": "veth1234", "mac": "aa:bb:cc:dd:ee:02"},
    {"name": "eth0", "mac": "aa:bb:cc:dd:ee:03", "sandbox": "/run/netns/p"}
  ],
  "ips": [{"interface": 2, "address": "10.222.0.5/24", "gateway": "10.222.0.1"}],
  "routes": [{"dst": "0.0.0.0/0"}],
  "dns": {"nameservers": ["10.222.0.1"], "search": ["svc"]}
}""")
put("cni_result", "dual-stack-0.4.json", """{"cniVersion":"0.4.0",
  "interfaces":[{"name":"eth0","sandbox":"/proc/1/ns/net"},{"name":"vethx"}],
  "ips":[{"version":"4","interface":0,"address":"10.1.0.2/16"},
         {"version":"6","interface":0,"address":"fd00::2/64"},
         {"version":"4","interface":1,"address":"10.9.9.9/32"},
         {"version":"4","address":"10.1.0.2/16"}]}""")
put("cni_result", "loopback.json", '{"cniVersion":"1.0.0","interfaces":[{"name":"lo","sandbox":"/run/netns/x"}],"ips":[{"interface":0,"address":"127.0.0.1/8"},{"interface":0,"address":"::1/128"}],"dns":{}}')
put("cni_result", "bad-index.json", '{"interfaces":[],"ips":[{"address":"10.0.0.1/8","interface":0}]}')

# Layers.
def layer(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for kind, name, extra in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            data = None
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "file":
                data = extra
                info.size, info.mode = len(data), 0o644
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, extra
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, extra
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            elif kind == "xattr":
                data = b"x"
                info.size = 1
                info.pax_headers = {"SCHILY.xattr.user.k": "v"}
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()

base = layer([
    ("dir", "./", None), ("dir", "bin", None), ("file", "bin/sh", b"#!/bin/true\n"),
    ("sym", "bin/ash", "sh"), ("hard", "bin/busybox", "bin/sh"), ("dir", "etc", None),
    ("file", "etc/passwd", b"root:x:0:0::/root:/bin/sh\n"), ("sym", "usr", "/"),
    ("fifo", "run-fifo", None), ("xattr", "etc/attr", None),
])
upper = layer([
    ("dir", "etc", None), ("file", "etc/.wh.passwd", b""), ("dir", "opt", None),
    ("file", "opt/.wh..wh..opq", b""), ("file", "opt/new", b"new\n"),
], fmt=tarfile.GNU_FORMAT)
escape = layer([("sym", "link", "/"), ("file", "link/etc/x", b"no\n"), ("file", "../up", b"no\n")])
put("unpack_layer", "base.tar", base)
put("unpack_layer", "upper-whiteouts.tar", upper)
put("unpack_layer", "escapes.tar", escape)
put("unpack_layer", "base.tar.gz", gzip.compress(base, mtime=0))
put("unpack_layer", "empty.tar", b"\0" * 1024)
if shutil.which("zstd"):
    put("unpack_layer", "base.tar.zst", subprocess.run(["zstd", "-q", "-c"], input=base, capture_output=True, check=True).stdout)
