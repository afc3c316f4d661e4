"""Build step that pyproject.toml cannot declare: the wheel ships the policy library and the rules.

The repository's policies/ and rules/ are their one source; building a wheel copies them into the
package as tribunal/_bundled/policies and tribunal/_bundled/rules, the defaults of an installed
Tribunal (tribunal/bundled.py). An editable install (`make run`) copies nothing: it reads the
repository's folders in place. Everything else about the package is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = ("policies", "rules")


class BuildWithLibrary(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "tribunal" / "_bundled"
        shutil.rmtree(target, ignore_errors=True)  # a folder removed from policies/ leaves no stale copy
        for name in BUNDLED:
            source = ROOT / name
            if not source.is_dir():
                raise SystemExit(f"{source}: missing; the wheel ships the repository's {name}/ inside it")
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns(".*", "__pycache__"))


setup(cmdclass={"build_py": BuildWithLibrary})
