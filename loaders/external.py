"""Running a converter program (antiword, catppt) on one file: found on PATH or named by its Debian package, and
never outliving the process that started it.

The legacy Word and PowerPoint readers are small C programs rather than Python libraries: no maintained Python
library reads .doc or .ppt text (olefile only lists their streams; the binary formats' text tables are the hard
part). They run in the isolated parser worker (`loaders.isolation`) like every parser: a program that loops is
ended with the worker when the file's ``--file-timeout`` passes, because each program is started with
`die_with_parent` (the kernel kills it when the worker goes). Read in-process (`loaders.registry.read` called
directly), they have no timeout, like the other parsers there.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from loaders.errors import LoadError
from loaders.isolation import die_with_parent


def run(program: str, package: str, args: list[str], path: Path) -> subprocess.CompletedProcess[bytes]:
    """Run `program` with `args` and then `path`; its output, whatever its exit status. Raises `LoadError` naming
    the Debian `package` when the program is not installed."""
    found = shutil.which(program)
    if found is None:
        raise LoadError(f"{program} is not installed: install the Debian package {package} (apt-get install {package})")
    # The "--" ends the options: a file named "-x" is a file. The worker is single-threaded, so preexec_fn is safe.
    return subprocess.run(
        [found, *args, "--", str(path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
        preexec_fn=die_with_parent,
    )
