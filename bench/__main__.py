"""``python -m bench``: see bench/_cli.py. No imports at module level: multiprocessing's spawn
children never run a package's __main__, but keep it light all the same."""

if __name__ == "__main__":
    from bench._cli import main

    raise SystemExit(main())
