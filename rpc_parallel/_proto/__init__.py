"""Generated modules of the framework protos in proto/ (run `make proto`)."""
