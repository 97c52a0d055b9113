"""Ship the top-level data folders (hardware_db/, templates/) inside the wheel as planner/_data/.

The design card keeps data at the top of the checkout; an installed wheel must still find it, so the build copies
both folders into the package. planner.data.paths looks in the package first, then in the checkout.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent
DATA_DIRS = ("hardware_db", "templates")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        for name in DATA_DIRS:
            target = Path(self.build_lib) / "planner" / "_data" / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(ROOT / name, target)


setup(cmdclass={"build_py": BuildWithData})
