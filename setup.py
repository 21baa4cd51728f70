"""Package discovery that pyproject.toml cannot express (see the comment there).

Everything else (metadata, dependencies, package data) is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["facecore", "facecore.*", "app", "app.*"]),
        "facecore_models",
    ],
    package_dir={"facecore_models": "models"},
)
