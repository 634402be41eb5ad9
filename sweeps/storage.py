"""Where results go: a local folder, a shared filesystem, or an object store (s3://, gs://).

Everything a run writes goes through pyarrow's filesystems, so the same code writes to a
laptop's disk and to a bucket a cluster's nodes share; Tune's own storage path follows.
`Place` lives in analysis.place, so that the analysis reads runs from the same places.
"""

from analysis.place import Place, StorageError

__all__ = ["Place", "StorageError"]
