"""Datasets: the registry of real files (``registry``), loaders and transforms.

Import submodules explicitly (``from tinylib.data import registry``); importing this
package loads nothing else.
"""
