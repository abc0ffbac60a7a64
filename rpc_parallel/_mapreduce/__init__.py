"""``rp.map_reduce``: OCaml's ``Map_reduce`` over worker processes.

``_functions``: ``MapFunction``/``MapReduceFunction``, a map declared as a worker type of batch
functions (light: every worker process imports it); ``_config``: ``Config``, where the workers run;
``_engine``: the scheduler (batches sized by measured cost, read-ahead and reordering bounded,
retries, progress) behind ``Pool`` and the one-shot operations of ``rpc_parallel.map_reduce``.
"""
