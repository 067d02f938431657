"""Build the offline busybox test image (no registry needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

BUSYBOX = "/bin/busybox"
DEFAULT_TAG = "dmux-test/busybox:1"

USERS = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


def _image_exists(tag: str) -> bool:
    probe = subprocess.run(["docker", "image", "inspect", tag], check=False, capture_output=True)
    return probe.returncode == 0


def _populate(root: Path) -> None:
    """Lay out a tiny root filesystem: busybox + applet symlinks, etc, tmp, root."""
    root.chmod(0o755)  # becomes the image's "/"; mkdtemp makes it 0700
    bin_dir = root / "bin"
    bin_dir.mkdir()
    shutil.copy2(BUSYBOX, bin_dir / "busybox")
    applets = subprocess.run(
        [BUSYBOX, "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (bin_dir / applet).symlink_to("busybox")
    etc = root / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(USERS)
    (etc / "group").write_text(GROUP)
    (root / "tmp").mkdir()
    os.chmod(root / "tmp", 0o1777)  # noqa: S103 (a real /tmp; chmod bypasses umask)
    (root / "root").mkdir()
    os.chmod(root / "root", 0o700)


def ensure_test_image(tag: str = DEFAULT_TAG) -> str:
    """Return `tag`, first importing a minimal busybox image under it if missing."""
    if _image_exists(tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="dmux-image-") as tmp:
        _populate(Path(tmp))
        tar = subprocess.Popen(
            ["tar", "-C", tmp, "--numeric-owner", "--owner=0", "--group=0", "-c", "."],
            stdout=subprocess.PIPE,
        )
        assert tar.stdout is not None
        imported = subprocess.run(
            [
                "docker",
                "import",
                "--change",
                "ENV PATH=/bin",
                "--change",
                'CMD ["/bin/sh"]',
                "-",
                tag,
            ],
            stdin=tar.stdout,
            check=False,
            capture_output=True,
            text=True,
        )
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise RuntimeError(
                f"building test image {tag} failed (tar rc={tar.returncode}, "
                f"docker import rc={imported.returncode}): {imported.stderr.strip()}"
            )
    return tag
