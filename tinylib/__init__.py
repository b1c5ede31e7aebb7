"""tinylib: the library behind the tiny-objects workbook.

Import submodules explicitly (``from tinylib import boxes``); importing ``tinylib`` does
nothing else — no seeding, no thread settings, no downloads.
"""

__version__ = "0.1.0"
