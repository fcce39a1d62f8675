"""The ``lmf-gs`` command-line interface."""
