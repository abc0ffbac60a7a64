"""The rpc_parallel benchmark (``python -m bench``): rpc_parallel against raw grpcio and multiprocessing.

Kept free of imports: ``multiprocessing`` spawn children import this package to find their target.
"""
