"""Add compiled bytecode to a `chalice package` deployment.zip.

Lambda unpacks the package on a read-only file system, so a function that ships no bytecode
compiles every module it imports (requests, urllib3, cryptography's Python layer, chalice, the
app) on every cold start, and can never cache the result: about 250 ms of each scale-up's cold
start. This compiles every `.py` of the package with the interpreter that ran `chalice package`
(chalice sets the Lambda runtime from that same interpreter, so the bytecode's version always
matches) and writes `__pycache__` entries beside them. The bytecode is "unchecked-hash": it
does not depend on file timestamps, which a zip keeps only to two seconds.

    python scripts/precompile_package.py out/deployment.zip
"""

from __future__ import annotations

import compileall
import py_compile
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path


def precompile(archive: Path) -> int:
    """Rewrite `archive` with bytecode beside every module; return the number of .pyc added."""
    with tempfile.TemporaryDirectory(prefix="precompile-") as tmp:
        root = Path(tmp) / "package"
        with zipfile.ZipFile(archive) as zipped:
            entries = zipped.infolist()
            zipped.extractall(root)
        existing = {info.filename for info in entries}
        compileall.compile_dir(
            str(root), quiet=2, workers=1, force=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        added = sorted(p for p in root.rglob("*.pyc")
                       if p.relative_to(root).as_posix() not in existing)
        rebuilt = Path(tmp) / "deployment.zip"
        with zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as out:
            for info in entries:
                # Keep each entry's attributes (permissions of executables and libraries); any
                # bytecode the source tree brought along was recompiled in place (force=True).
                out.writestr(info, (root / info.filename).read_bytes() if not info.is_dir()
                             else b"")
            for path in added:
                out.write(path, path.relative_to(root).as_posix())
        shutil.move(str(rebuilt), archive)
    return len(added)


def main(argv: list[str]) -> int:
    """Precompile the deployment packages named on the command line."""
    if len(argv) < 2:
        print(__doc__)
        return 2
    for name in argv[1:]:
        count = precompile(Path(name))
        print(f"{name}: added {count} compiled modules for Python "
              f"{sys.version_info.major}.{sys.version_info.minor}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
