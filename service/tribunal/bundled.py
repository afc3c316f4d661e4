"""The policy library and the rules installed with Tribunal: the defaults of ``policy_dir`` and
``rules_dir`` (the value ``bundled``).

The repository's ``policies/`` and ``rules/`` are their one source. Building the wheel copies them
into the package as ``tribunal/_bundled/policies`` and ``tribunal/_bundled/rules`` (setup.py), so an
installed Tribunal judges from any folder. A checkout (``make run``, an editable install) has no
``_bundled`` folder and reads the repository's folders in place, so edits take effect at once.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

BUNDLED = "bundled"
"""The value of ``policy_dir`` / ``rules_dir`` that names the folders installed with Tribunal."""

BundledName = Literal["policies", "rules"]


class BundledMissing(FileNotFoundError):
    """Neither the package nor a checkout around it holds the folder (a broken installation)."""


def bundled_dir(name: BundledName) -> Path:
    """The folder ``name`` installed with Tribunal: the package's copy in a wheel install, else the
    repository's own folder when Tribunal runs from a checkout."""
    packaged = resources.files("tribunal").joinpath("_bundled", name)
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2]  # service/tribunal/bundled.py -> the repository
    if (checkout / "pyproject.toml").is_file() and (checkout / name).is_dir():
        return checkout / name
    raise BundledMissing(
        f"this Tribunal installation has no bundled {name} (tribunal/_bundled/{name} is missing from the "
        "package: reinstall it from a wheel built with `make wheel`)"
    )
