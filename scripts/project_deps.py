"""Print every dependency of pyproject.toml (core + all extras), one a line, as a requirements file."""

import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
deps = list(project["dependencies"])
for extra in project.get("optional-dependencies", {}).values():
    deps += extra
print("\n".join(dict.fromkeys(deps)))
