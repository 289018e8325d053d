"""Keep a chart inside its directory: no symbolic links, nothing but regular files and folders.

A chart comes from a commit we do not trust, and Helm follows symbolic links when it loads or
packages a directory: ``files/env -> /proc/self/environ`` would put the worker's environment in
the published archive, ``values.yaml -> /etc/...`` in the stored values. :func:`chart_path_problems`
lists every such entry so that :func:`~releases.charts.chartfile.load_chart`,
:func:`~releases.charts.render.render_chart` and :func:`~releases.charts.package.package_chart`
refuse the chart before reading any file of it.

Every symbolic link is refused, including one that stays inside the chart:

* a link to a folder inside the chart can loop (``templates/x -> ..``) or fan out (two links to
  ``.`` give 2**40 paths before the kernel's 40-link limit stops the walk), which Helm's loader
  and ours would follow;
* "stays inside" has to be decided on the resolved path, through chains of links and ``..``; one
  rule with no resolution in it leaves nothing to get wrong;
* Helm stores the target's content as a plain file anyway, so committing a copy gives the same
  archive; nothing a chart needs is lost.

Entries inside ``.helmignore``-d folders are checked too: the check runs before .helmignore is
read (it may be a link itself), and a refused chart is cheap to fix.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def _link_problem(chart_root: str, relpath: str, link: Path) -> str:
    try:
        target = os.readlink(link)
    except OSError:
        target = "?"
    resolved = os.path.realpath(link)
    inside = resolved == chart_root or resolved.startswith(chart_root + os.sep)
    if inside:
        return (
            f"{relpath}: is a symbolic link (to {target}); charts may not contain symbolic links, "
            "commit a copy of the file instead"
        )
    return (
        f"{relpath}: is a symbolic link to {target}, outside the chart directory; charts may not contain "
        "symbolic links, remove it or commit the file itself"
    )


def chart_path_problems(chart_dir: Path) -> list[str]:
    """One problem per symbolic link or special file (FIFO, socket, device) under ``chart_dir``.

    Paths are relative to ``chart_dir`` (``/``-separated) and sorted; links are never followed.
    An empty list means every entry is a regular file or a real folder inside the chart.
    """
    chart_dir = Path(chart_dir)
    chart_root = os.path.realpath(chart_dir)
    problems: list[tuple[str, str]] = []
    pending: list[tuple[Path, str]] = [(chart_dir, "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError as error:
            shown = prefix.rstrip("/") or "."
            problems.append((shown, f"{shown}: cannot be listed ({error.strerror}); check the folder's permissions"))
            continue
        for entry in entries:
            relpath = prefix + entry.name
            if entry.is_symlink():
                problems.append((relpath, _link_problem(chart_root, relpath, Path(entry.path))))
            elif entry.is_dir(follow_symlinks=False):
                pending.append((Path(entry.path), relpath + "/"))
            elif not stat.S_ISREG(entry.stat(follow_symlinks=False).st_mode):
                problems.append((relpath, f"{relpath}: is not a regular file (a FIFO, socket or device); remove it"))
    return [message for _, message in sorted(problems)]
