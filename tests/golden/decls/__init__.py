"""Worker declarations whose generated files are the codegen's golden contract (tests/golden/expected)."""
