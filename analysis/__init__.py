"""Analysis of sweep results: pandas DataFrames from the Parquet a run writes.

Knows pandas and matplotlib only (never torch or Ray), so everything here works the same
in a notebook. The report computations arrive with the analysis issue.
"""
