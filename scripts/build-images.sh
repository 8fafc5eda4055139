#!/usr/bin/env bash
# Build the container images k3rs tests and demos use, from files on this machine only:
# no registry, no docker/skopeo/buildah. Each image is an OCI image-layout tarball that
# `k3rs` imports from `<data-dir>/agent/images/` (as k3s does with its air-gap images):
#
#   OUT_DIR/busybox.tar  docker.io/library/busybox:1.35 and :latest
#                        (Debian's static /bin/busybox with its applets, cmd ["sh"])
#
#   ./scripts/build-images.sh /var/lib/rancher/k3rs/agent/images
#
# The pause image (the default --pause-image) is not built here: k3rs carries its own
# (crates/kubelet/pause/pause.c, packed by crates/kubelet/src/images/pause.rs) and the
# agent imports it at start.
#
# The output is deterministic (fixed mtimes and owners, sorted entries), so rebuilding
# gives the same digests; a tarball whose bytes did not change is left untouched so the
# agent's image watcher does not re-import it.
set -euo pipefail

fatal() { printf 'build-images: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || fatal "usage: $0 OUT_DIR"
out=$1

busybox=/bin/busybox
# Debian's `busybox` package is dynamically linked; only `busybox-static` runs in an
# image that has no libc.
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed" \
    || fatal "the busybox-static package is not installed (apt-get install busybox-static)"
[ -x "$busybox" ] || fatal "$busybox is missing (reinstall busybox-static)"
command -v python3 >/dev/null || fatal "python3 is not installed"
tar --version 2>/dev/null | grep -q "GNU tar" || fatal "GNU tar is required (for --sort=name)"

# The OCI platform of this machine: Debian's architecture names, mapped to Go's.
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
variant=""
case "$arch" in
    amd64 | x86_64) arch=amd64 ;;
    arm64 | aarch64) arch=arm64 ;;
    armhf | armv7l) arch=arm variant=v7 ;;
    i386 | i686) arch=386 ;;
    ppc64el | ppc64le) arch=ppc64le ;;
    s390x) arch=s390x ;;
    riscv64) arch=riscv64 ;;
    *) fatal "unsupported architecture $arch" ;;
esac

mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 022

# A deterministic tar of DIR's contents: sorted names, epoch mtimes, root owner, and
# no atime/ctime headers (the GNU format has none unless asked).
det_tar() { # DIR OUTPUT
    local dir=$1 output=$2
    (cd "$dir" && LC_ALL=C find . -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort \
        | tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
            -cf "$output" -T -)
}

# OCI image layout from one uncompressed layer and a JSON fragment of image config
# (Entrypoint/Cmd/Env...). Names are full references; the first is also tagged in
# org.opencontainers.image.ref.name (the tag, as containerd's exporter writes it).
make_layout() { # LAYER_TAR CONFIG_JSON LAYOUT_DIR NAME...
    local layer=$1 config=$2 layout=$3
    shift 3
    mkdir -p "$layout/blobs/sha256"
    python3 - "$layer" "$config" "$layout" "$arch" "$variant" "$@" <<'PY'
import hashlib, json, os, shutil, sys

layer, config_fragment, layout, arch, variant, *names = sys.argv[1:]
blobs = os.path.join(layout, "blobs", "sha256")

def put_blob(data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest

def dump(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()

h = hashlib.sha256()
with open(layer, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
layer_digest = "sha256:" + h.hexdigest()
layer_size = os.path.getsize(layer)
shutil.copyfile(layer, os.path.join(blobs, h.hexdigest()))

platform = {"architecture": arch, "os": "linux"}
if variant:
    platform["variant"] = variant
epoch = "1970-01-01T00:00:00Z"
config = dict(platform)
config.update({
    "created": epoch,
    "config": json.loads(config_fragment),
    # The layer is stored uncompressed, so its diff ID is its digest.
    "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    "history": [{"created": epoch, "created_by": "k3rs scripts/build-images.sh"}],
})
config_bytes = dump(config)
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": put_blob(config_bytes),
        "size": len(config_bytes),
    },
    "layers": [{
        "mediaType": "application/vnd.oci.image.layer.v1.tar",
        "digest": layer_digest,
        "size": layer_size,
    }],
}
manifest_bytes = dump(manifest)
manifest_digest = put_blob(manifest_bytes)

index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
for name in names:
    index["manifests"].append({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest,
        "size": len(manifest_bytes),
        "platform": platform,
        "annotations": {
            "io.containerd.image.name": name,
            "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1],
        },
    })
with open(os.path.join(layout, "index.json"), "wb") as f:
    f.write(dump(index))
with open(os.path.join(layout, "oci-layout"), "wb") as f:
    f.write(dump({"imageLayoutVersion": "1.0.0"}))
print(manifest_digest)
PY
}

# Move a freshly built tarball into OUT_DIR unless the one there is byte-identical.
install_tar() { # BUILT NAME
    local built=$1 target=$out/$2
    if [ -f "$target" ] && cmp -s "$built" "$target"; then
        echo "$target unchanged"
    else
        cp "$built" "$target.tmp" && mv -f "$target.tmp" "$target"
        echo "$target written"
    fi
}

# ---- busybox -------------------------------------------------------------------------
root=$work/busybox-root
mkdir -p "$root"/{bin,dev,etc,home,proc,root,sys,tmp,usr/bin,var/www}
chmod 0700 "$root/root"
chmod 1777 "$root/tmp"
install -m 0755 "$busybox" "$root/bin/busybox"
# Every applet as a hard link in /bin, as the upstream busybox image has them; one
# /usr/bin/env too, for `#!/usr/bin/env sh` scripts.
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln "$root/bin/busybox" "$root/bin/$applet"
done
ln "$root/bin/busybox" "$root/usr/bin/env"
for applet in sh ls cat echo httpd nc nslookup wget ping sleep tar env hostname ip ifconfig \
    mount ps kill head tail grep dd id true false date printf mkdir rm test seq yes timeout \
    cut wc sort sed awk tee xargs find stat sha256sum nproc free; do
    [ -e "$root/bin/$applet" ] || fatal "this busybox has no '$applet' applet"
done
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/home:/bin/false' \
    > "$root/etc/passwd"
printf '%s\n' 'root:x:0:' 'nobody:x:65534:' > "$root/etc/group"
chmod 0644 "$root/etc/passwd" "$root/etc/group"
det_tar "$root" "$work/busybox-layer.tar"

path_env='"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"'
make_layout "$work/busybox-layer.tar" "{\"Env\":[$path_env],\"Cmd\":[\"sh\"]}" \
    "$work/busybox-layout" docker.io/library/busybox:1.35 docker.io/library/busybox:latest \
    >/dev/null
det_tar "$work/busybox-layout" "$work/busybox.tar"
install_tar "$work/busybox.tar" busybox.tar
