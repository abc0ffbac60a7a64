"""Runnable examples, one per feature (ports of the OCaml rpc_parallel examples)."""
