"""Only here for cffi: its setuptools hook builds the C helper (API mode) at install time."""

from setuptools import setup

setup(cffi_modules=["csrc/build_ptcore.py:ffibuilder"])
