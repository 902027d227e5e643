"""The open catalogue: reading uploads, checking their quality and identifiers, publishing.

- ``reading``: a provider's CSV/Excel/Parquet file, cast to the entry's declared types, with
  ``csv_text`` (GBK/GB18030/UTF-8), ``sheets`` (the header after title rows, where each
  cell is) and ``cell_forms`` (dates and numbers as people write them).
- ``identifiers``: resident ID numbers and unified social credit codes (R13).
- ``quality``: the quality report sent back to the provider (R14), refusing undeclared identifiers.
- ``service``: publishing versions and reclassifying datasets (R1, R2).
"""
