"""Map the top-level folders onto the baomi namespace (see shared layout in docs/)."""
from setuptools import find_namespace_packages, setup

PACKAGE_DIRS = {"baomi.common": "common", "baomi.agent": "agent", "baomi.service": "service", "baomi.rules": "rules"}

packages = []
for name, folder in PACKAGE_DIRS.items():
    packages.append(name)
    # namespace packages too: the console's templates/, static/ and locale/ ship as package data
    packages += [f"{name}.{sub}" for sub in find_namespace_packages(folder, exclude=["*__pycache__*"])]

setup(packages=packages, package_dir=PACKAGE_DIRS)
