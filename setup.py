"""Map the top-level folders onto the baomi namespace (see shared layout in docs/)."""
from setuptools import find_packages, setup

PACKAGE_DIRS = {"baomi.common": "common", "baomi.agent": "agent", "baomi.service": "service", "baomi.rules": "rules"}

packages = []
for name, folder in PACKAGE_DIRS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=PACKAGE_DIRS)
