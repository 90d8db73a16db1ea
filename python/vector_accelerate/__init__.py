"""VectorAccelerate: GPU-accelerated (CUDA) and CPU vector search with a FAISS-shaped API.

The compiled library is ``vector_accelerate.vector_accelerate``; every name it defines is
re-exported here. ``vector_accelerate.dask`` builds index shards on Dask workers and searches
them from a client.
"""
from .vector_accelerate import *  # noqa: F401,F403
from .vector_accelerate import __doc__, __version__, _knn_call_seconds  # noqa: F401
